"""The origin styles behave as the servers they stand for, beyond their DESCRIBE answers."""

from __future__ import annotations

import pytest

from proxyd.rtsp.oneshot import rtsp_request
from tests.interop.styles import MOUNT, PERL_CLIP
from tests.peers.origin import OriginShape

pytestmark = pytest.mark.peers

PREPARE_MS = 300
TEARDOWN_MS = 1500  # long enough that a DESCRIBE sent as the player exits lands inside it


def describe(url: str) -> int:
    return rtsp_request(url, "DESCRIBE", headers=[("Accept", "application/sdp")], timeout=10).status


def test_slow_shared_live_mount_answers_503_while_it_shuts_down(gst_origin_factory, peer_players):
    origin = gst_origin_factory(shape=OriginShape(slow_live=(MOUNT,), slow_live_prepare_ms=PREPARE_MS,
                                                  slow_live_teardown_ms=TEARDOWN_MS))
    url = origin.url(MOUNT)
    played = peer_players.ffmpeg_play(url, transport="tcp", video_span=0.5, timeout=20)
    assert played.video_frames > 0, played.describe()
    mark = origin.mark()
    assert describe(url) == 503  # the player's TEARDOWN started the shutdown
    origin.wait_for(lambda e: e["event"] == "media-unprepared", timeout=10, after=mark)
    assert describe(url) == 200  # idle again: a DESCRIBE prepares it anew
    configured = [e for e in origin.events[mark:] if e["event"] == "media-configured"]
    assert len(configured) == 1  # the 503 found the old media; the 200 built a new one


def test_perl_origin_serves_players_over_udp_only(perl_origin_factory, test_clips, peer_players):
    origin = perl_origin_factory(test_clips.make(PERL_CLIP).path, mount=MOUNT)
    over_udp = peer_players.ffmpeg_play(origin.url(), transport="udp", video_span=0.5, timeout=20)
    over_tcp = peer_players.ffmpeg_play(origin.url(), transport="tcp", video_span=0.5, timeout=20)
    assert over_udp.video_frames > 0, over_udp.describe()
    assert over_tcp.video_frames == 0 and "400 Bad Request" in over_tcp.stderr_tail, over_tcp.describe()
