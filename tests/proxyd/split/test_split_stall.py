"""An origin session that answers but stops sending media is replaced: the split's players keep
their sessions and get media again from a new origin session (a frozen origin, SIGSTOP/SIGCONT)."""

from __future__ import annotations

import asyncio
import os
import signal
import struct

import pytest

from proxyd.config import Limits
from tests.proxyd.split.test_split_peers import wait_log
from tests.proxyd.split.test_split_rtsp import play

pytestmark = pytest.mark.peers
SEQ = struct.Struct("!H")


async def test_a_frozen_origin_is_replaced_and_players_continue(live_origin, split_proxy):
    proxy = split_proxy("--split-reconnect-wait", "60")
    player, _, _ = await play(proxy)
    await player.wait_packets(0, 30)
    mark = live_origin.mark()
    os.kill(live_origin.pid, signal.SIGSTOP)
    try:
        await asyncio.to_thread(wait_log, proxy, "no media from the origin", Limits().split_media_timeout + 10)
        frozen_at = len(player.packets[0])
    finally:
        os.kill(live_origin.pid, signal.SIGCONT)
    await asyncio.to_thread(live_origin.wait_for, lambda e: e["event"] == "session-created", 20,
                            after=mark)
    await player.wait_packets(0, frozen_at + 50, timeout=20)
    # The player's numbering continues across the origin sessions (no jump back, no wrap).
    seqs = [SEQ.unpack_from(p, 2)[0] for p in player.packets[0]]
    assert all(0 < (b - a) & 0xFFFF < 0x8000 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    assert live_origin.session_count("/live", after=mark) == 1
    await player.close()
