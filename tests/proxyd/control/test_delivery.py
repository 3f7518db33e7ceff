"""ControlPlane report delivery end to end against a real HTTP control plane that can fail."""

import asyncio
import json
import logging

from proxyd.control.plane import ControlPlane
from tests.proxyd.control.conftest import eventually


def emit_many(plane, count, start=0, kind="session.counters"):
    for i in range(start, start + count):
        plane.reporter.emit(kind, {"session_id": f"s{i}", "n": i})


def delivered_ns(fake) -> list[int]:
    return [fake.events[i]["data"]["n"] for i in fake.event_order]


def delivered_seqs(fake) -> list[int]:
    return [fake.events[i]["seq"] for i in fake.event_order]


def spooled_lines(plane) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in plane.spool.directory.glob("*.jsonl"))


async def test_batches_are_cut_by_event_count(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=4, batch_max_delay=60.0))
    planes.append(plane)
    await plane.start()
    emit_many(plane, 8)
    await fake_api.wait_for_events(8)
    assert [len(b["events"]) for b in fake_api.report_bodies] == [4, 4]
    assert delivered_ns(fake_api) == list(range(8))


async def test_partial_batch_is_sent_after_max_delay(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=100, batch_max_delay=0.05))
    planes.append(plane)
    await plane.start()
    emit_many(plane, 3)
    await fake_api.wait_for_events(3)
    assert [len(b["events"]) for b in fake_api.report_bodies] == [3]


async def test_batch_envelope_matches_the_contract(make_config, fake_api, planes):
    plane = ControlPlane(make_config(listen="127.0.0.1:8554"),
                         node_load=lambda: {"sessions": 3, "bandwidth_bps": 4_000_000})
    planes.append(plane)
    await plane.start()
    plane.reporter.emit("session.started", {"session_id": "s1"})
    await fake_api.wait_for_events(1)
    body = fake_api.report_bodies[0]
    assert body["schema_version"] == 1
    assert body["node"]["name"] == "node-1" and body["node"]["listen"] == "127.0.0.1:8554"
    assert body["node"]["load"] == {"sessions": 3, "bandwidth_bps": 4_000_000, "cache_disk_full": False}
    assert body["node"]["reporter"]["dropped"]["queue_full"] == 0


async def test_spools_while_refused_then_delivers_everything_in_order_once(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=5))
    planes.append(plane)
    await plane.start()
    emit_many(plane, 5)
    await fake_api.wait_for_events(5)
    fake_api.refuse()
    emit_many(plane, 40, start=5)
    await eventually(lambda: spooled_lines(plane) == 40, what="40 events spooled")
    assert not plane.delivery.reachable
    fake_api.resume()
    emit_many(plane, 5, start=45)
    await fake_api.wait_for_events(50)
    assert delivered_ns(fake_api) == list(range(50))
    assert delivered_seqs(fake_api) == sorted(delivered_seqs(fake_api))
    assert fake_api.duplicates == 0
    await eventually(lambda: plane.spool.segments == 0, what="spool emptied")
    assert plane.delivery.reachable


async def test_5xx_keeps_events_spooled_until_the_api_recovers(make_config, fake_api, planes, caplog):
    plane = ControlPlane(make_config(batch_max_events=10))
    planes.append(plane)
    await plane.start()
    fake_api.report_status = 503
    with caplog.at_level(logging.WARNING, logger="proxyd.control"):
        emit_many(plane, 30)
        await fake_api.wait_until(lambda f: f.report_requests() >= 3)
        await eventually(lambda: spooled_lines(plane) == 30, what="30 events spooled")
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1  # once per outage
    fake_api.report_status = None
    await fake_api.wait_for_events(30)
    assert delivered_ns(fake_api) == list(range(30))
    assert fake_api.duplicates == 0


async def test_slow_answers_time_out_and_redelivery_is_deduplicated(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=5, request_timeout=0.2))
    planes.append(plane)
    await plane.start()
    fake_api.report_delay = 1.0
    emit_many(plane, 5)
    await fake_api.wait_until(lambda f: f.report_requests() >= 2)  # the first attempt timed out
    fake_api.report_delay = 0.0
    emit_many(plane, 5, start=5)
    await fake_api.wait_for_events(10)
    assert sorted(delivered_ns(fake_api)) == list(range(10))
    await eventually(lambda: plane.spool.segments == 0, what="spool emptied")


async def test_permanent_400_goes_to_dead_letter_and_is_not_retried(make_config, fake_api, planes, caplog):
    plane = ControlPlane(make_config(batch_max_events=3, batch_max_delay=60.0))
    planes.append(plane)
    await plane.start()
    fake_api.fail_next = [400]
    with caplog.at_level(logging.ERROR, logger="proxyd.control"):
        emit_many(plane, 9)
        await fake_api.wait_for_events(6)
    assert delivered_ns(fake_api) == list(range(3, 9))
    assert fake_api.report_requests() == 3  # the rejected batch was sent exactly once
    [dead] = plane.spool.dead_directory.glob("*.jsonl")
    assert [json.loads(line)["data"]["n"] for line in dead.read_bytes().splitlines()] == [0, 1, 2]
    assert plane.stats()["dead_lettered"] == 3
    assert len([r for r in caplog.records if "rejected a report batch" in r.getMessage()]) == 1


async def test_refused_token_keeps_events_until_fixed(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=2))
    planes.append(plane)
    await plane.start()
    fake_api.token, real = "rotated", fake_api.token
    emit_many(plane, 4)
    await fake_api.wait_until(lambda f: f.report_requests() >= 2)
    assert list(plane.spool.dead_directory.iterdir()) == []
    fake_api.token = real
    await fake_api.wait_for_events(4)
    assert delivered_ns(fake_api) == list(range(4))


async def test_spool_cap_drops_are_counted_and_reported(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=5, spool_max_bytes=3000))
    planes.append(plane)
    await plane.start()
    fake_api.refuse()
    emit_many(plane, 60)
    # Every event ends up spooled or counted as dropped; a batch being written to disk (in a worker
    # thread) is briefly neither queued, in memory nor on disk, so wait for the sum, not the queues.
    await eventually(lambda: plane.stats()["dropped"]["spool_full"] > 0 and plane.reporter.queued_events == 0
                     and plane.delivery._outbox.memory_events == 0
                     and spooled_lines(plane) + plane.stats()["dropped"]["spool_full"] == 60,
                     what="spool overflow")
    stored = spooled_lines(plane)
    dropped = plane.stats()["dropped"]["spool_full"]
    assert stored + dropped == 60 and stored > 0
    fake_api.resume()
    await fake_api.wait_for_events(stored)
    assert sorted(delivered_ns(fake_api)) == delivered_ns(fake_api)  # survivors still in order
    last = fake_api.report_bodies[-1]["node"]["reporter"]
    assert last["dropped"]["spool_full"] == dropped


async def test_a_batch_is_on_disk_before_its_post_and_removed_after_the_ack(make_config, fake_api, planes):
    fake_api.report_delay = 0.5  # a slow control plane: the POST is in flight long enough to look
    plane = ControlPlane(make_config(batch_max_events=3))
    planes.append(plane)
    await plane.start()
    emit_many(plane, 3)
    await fake_api.wait_until(lambda fake: fake.report_requests() >= 1)
    assert spooled_lines(plane) == 3  # a SIGKILL now loses nothing: the restart sends it again
    await fake_api.wait_for_events(3)
    await eventually(lambda: plane.spool.segments == 0, what="the acknowledged batch removed from the spool")


async def test_batches_the_full_spool_refuses_wait_in_memory_while_the_api_answers(make_config, fake_api, planes):
    plane = ControlPlane(make_config(batch_max_events=5, spool_max_bytes=1))  # nothing fits on disk
    planes.append(plane)
    await plane.start()
    emit_many(plane, 10)
    await fake_api.wait_for_events(10)
    assert delivered_ns(fake_api) == list(range(10))
    assert plane.stats()["dropped"]["spool_full"] == 0


async def test_stop_flushes_memory_to_spool_and_restart_delivers(make_config, fake_api, planes):
    config = make_config(batch_max_events=100, batch_max_delay=60.0)
    first = ControlPlane(config)
    await first.start()
    emit_many(first, 7)
    await first.stop(deadline=5.0)
    assert spooled_lines(first) == 7
    assert fake_api.events == {}
    second = ControlPlane(config)
    planes.append(second)
    await second.start()
    await fake_api.wait_for_events(7)
    assert delivered_ns(fake_api) == list(range(7))


async def test_crash_with_torn_spool_line_delivers_the_rest(make_config, fake_api, planes):
    config = make_config(batch_max_events=100, batch_max_delay=60.0)
    first = ControlPlane(config)
    await first.start()
    emit_many(first, 6)
    await first.stop(deadline=5.0)
    [segment] = first.spool.directory.glob("*.jsonl")
    raw = segment.read_bytes()
    segment.write_bytes(raw[: len(raw) - 30])  # the process died while writing the last event
    second = ControlPlane(make_config(batch_max_delay=0.02))  # same state_dir
    planes.append(second)
    await second.start()
    emit_many(second, 2, start=6)
    await fake_api.wait_for_events(7)
    assert delivered_ns(fake_api) == [0, 1, 2, 3, 4, 6, 7]
    assert second.stats()["corrupt_spool_lines"] == 1


async def test_seq_continues_after_restart(make_config, fake_api, planes):
    config = make_config(batch_max_events=3)
    first = ControlPlane(config)
    await first.start()
    emit_many(first, 3)
    await fake_api.wait_for_events(3)
    await first.stop()
    second = ControlPlane(config)
    planes.append(second)
    await second.start()
    emit_many(second, 3, start=3)
    await fake_api.wait_for_events(6)
    seqs = delivered_seqs(fake_api)
    assert seqs == sorted(seqs) and len(set(seqs)) == 6


async def test_seq_continues_from_spool_when_state_file_is_lost(make_config, fake_api, planes):
    config = make_config(batch_max_events=100, batch_max_delay=60.0, seq_block=1)
    first = ControlPlane(config)
    await first.start()
    emit_many(first, 4)
    await first.stop()
    (config.state_dir / "report-seq.json").unlink()
    second = ControlPlane(config)
    assert second.reporter.next_seq == 5
    await second.stop()


async def test_emit_before_start_is_delivered(make_config, fake_api, planes):
    plane = ControlPlane(make_config())
    planes.append(plane)
    emit_many(plane, 2)
    await plane.start()
    await fake_api.wait_for_events(2)


async def test_order_holds_when_memory_spool_and_failures_mix(make_config, fake_api, planes):
    """Slow answers fill memory so the pump spools; scripted 503s move memory to disk mid-stream."""
    plane = ControlPlane(make_config(batch_max_events=2, memory_batches=1, batch_max_delay=0.001))
    planes.append(plane)
    await plane.start()
    fake_api.report_delay = 0.02
    fake_api.fail_next = [None, 503, None, None, 503, 503, None, 503] * 3
    for i in range(200):
        plane.reporter.emit("session.counters", {"n": i})
        if i % 7 == 0:
            await asyncio.sleep(0)  # let the pump run between bursts, as the runtime's loop would
    await fake_api.wait_for_events(200, timeout=30)
    assert delivered_ns(fake_api) == list(range(200))
    assert fake_api.duplicates == 0
