"""SendBatch: datagrams with their own bytes for many destinations, one sendmmsg per flush, GSO runs
per destination, datagram boundaries kept; a refused destination or route loses nothing else."""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxyd.net.sendbatch import Destination, SendBatch
from proxyd.origin.stream_relay import StreamCounters
from tests.proxyd.runtime.test_burst import drain, receiver, sender, video_burst  # noqa: F401 (sender: fixture)


def add_run(batch: SendBatch, dest: Destination, datagrams: list[bytes]) -> None:
    """What a replay does: copy datagrams into the batch, one message per run of equal sizes (the
    last one possibly shorter), a message per datagram without GSO."""
    start = segment = 0
    for data in datagrams:
        n = len(data)
        if segment and (n > segment or not batch.gso):
            batch.emit(dest, start, batch.used - start, segment)
            segment = 0
        batch.view[batch.used:batch.used + n] = data
        if not segment:
            start, segment = batch.used, n
        batch.used += n
        if n < segment:
            batch.emit(dest, start, batch.used - start, segment)
            segment = 0
    if segment:
        batch.emit(dest, start, batch.used - start, segment)


def counted(data: list[bytes], counters: StreamCounters) -> list[bytes]:
    counters.packets_out += len(data)
    return data


@pytest.mark.parametrize("offload", [True, False])
async def test_each_destination_gets_its_own_datagrams_in_one_system_call(sender, offload):
    sinks = [receiver() for _ in range(3)]
    batch = SendBatch(sender)
    assert batch.gso, "the kernel should know UDP_SEGMENT"
    if not offload:
        batch.gso = False
    expected = {}
    for k, sink in enumerate(sinks):
        dest = Destination(socket.AF_INET, sink.getsockname(), StreamCounters())
        datagrams = [bytes([k]) + p[1:] for p in video_burst()]
        add_run(batch, dest, datagrams)
        expected[k] = datagrams
    messages = batch.count
    assert messages == (3 * 4 if offload else 3 * len(video_burst()))
    batch.flush()
    assert batch.flushes == 1 and batch.count == 0 and batch.send_errors == 0
    for k, sink in enumerate(sinks):
        assert drain(sink) == expected[k]
        sink.close()


async def test_a_refused_destination_is_counted_and_the_others_still_get_theirs(sender):
    good = receiver()
    good_counters, bad_counters = StreamCounters(), StreamCounters()
    batch = SendBatch(sender)
    refused = Destination(socket.AF_INET, ("255.255.255.255", 9), bad_counters)  # EACCES: no SO_BROADCAST
    wanted = Destination(socket.AF_INET, good.getsockname(), good_counters)
    add_run(batch, wanted, counted(video_burst()[:5], good_counters))
    add_run(batch, refused, counted(video_burst()[:5], bad_counters))
    add_run(batch, wanted, counted(video_burst()[5:], good_counters))
    batch.flush()
    assert drain(good) == video_burst()
    assert bad_counters.packets_dropped == 5 and bad_counters.packets_out == 0
    assert good_counters.packets_dropped == 0 and good_counters.packets_out == len(video_burst())
    assert batch.send_errors == 5
    good.close()


async def test_route_refusing_offload_falls_back_without_losing_datagrams(sender):
    sender.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK: the kernel refuses UDP_SEGMENT sends
    sinks = [receiver() for _ in range(2)]
    batch = SendBatch(sender)
    dests = [Destination(socket.AF_INET, s.getsockname(), StreamCounters()) for s in sinks]
    for dest in dests:
        add_run(batch, dest, video_burst())
    batch.flush()
    assert batch.gso_refused == 1 and not batch.gso
    for dest in dests:  # from now on a message per datagram
        add_run(batch, dest, video_burst())
    batch.flush()
    assert batch.gso_refused == 1 and batch.send_errors == 0
    for sink in sinks:
        assert drain(sink) == video_burst() + video_burst()
        sink.close()


async def test_flush_soon_sends_once_for_every_sender_of_the_loop_pass(sender):
    sink = receiver()
    batch = SendBatch(sender)
    dest = Destination(socket.AF_INET, sink.getsockname(), StreamCounters())
    for _ in range(3):  # three replays of one pacing tick
        add_run(batch, dest, video_burst()[:4])
        batch.flush_soon()
    assert drain(sink) == [] and batch.flushes == 0
    after = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(after.set_result, None)  # runs after the flush queued first
    await after
    assert batch.flushes == 1
    assert drain(sink) == 3 * video_burst()[:4]
    sink.close()
