"""The network fuzzer against a running proxyd while real players play: players get the whole clip,
every hostile connection is answered or closed, proxyd logs no traceback and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from tests.fuzz.netfuzz import fuzz

pytestmark = pytest.mark.peers

INPUTS = int(os.environ.get("FUZZ_NET_INPUTS", "600"))
REQUEST_TIMEOUT = 2.0


async def test_mutated_requests_and_frames_leave_players_undisturbed(shared_gst_origin, proxyd_process,
                                                                    peer_players, test_clips):
    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url()},
                           extra_args=["--request-timeout", str(REQUEST_TIMEOUT)])
    base = proxy.url("/vod/clip")
    players = [asyncio.to_thread(peer_players.ffmpeg_play, base, transport=t) for t in ("udp", "tcp")]
    outcomes, *results = await asyncio.gather(
        fuzz(proxy.host, proxy.port, base, [base + "/stream=0", base + "/stream=1"], inputs=INPUTS,
             quiet=REQUEST_TIMEOUT + 2),
        *players)
    for result in results:
        assert result.ok, result.describe()
        assert result.video_frames >= 0.95 * test_clips.main.video_frames, result.describe()
    print(f"network fuzz: {outcomes.inputs} inputs, outcomes {dict(outcomes.counts)}, "
          f"statuses {dict(outcomes.statuses.most_common(8))}")  # the figure (pytest -rP)
    assert outcomes.inputs == INPUTS
    # "silent" would be a connection neither answered nor closed within --request-timeout + 2 s.
    assert set(outcomes.counts) <= {"answered", "answered+closed", "closed"}, outcomes.counts
    assert outcomes.statuses and all(100 <= s <= 599 for s in outcomes.statuses), outcomes.statuses
    log = proxy.log_path.read_text(errors="replace")
    assert "Traceback" not in log, re.findall(r"(?m)^.*Error.*$", log)[:5]
