"""Reporter: event envelope, batching by count/bytes/time with an injected clock, bounded queue."""

import json
import math
import uuid

import pytest

from proxyd.control.reports import NullSink, Reporter, iso_utc


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_reporter(clock=None, **overrides) -> Reporter:
    values = dict(first_seq=1, batch_max_events=3, batch_max_bytes=10_000, batch_max_delay=1.0,
                  queue_max_events=100, queue_max_bytes=100_000, wall_clock=lambda: 1764072001.25,
                  clock=clock or FakeClock())
    values.update(overrides)
    return Reporter(**values)


def decode(batch):
    return [json.loads(line) for line in batch.lines]


def test_event_envelope_has_uuid4_id_seq_and_utc_timestamp():
    reporter = make_reporter(first_seq=41)
    reporter.emit("session.started", {"session_id": "s1"})
    [event] = decode(reporter.cut())
    assert set(event) == {"id", "seq", "at", "kind", "data"}
    assert uuid.UUID(event["id"]).version == 4
    assert event["seq"] == 41
    assert event["at"] == "2025-11-25T12:00:01.250Z"
    assert (event["kind"], event["data"]) == ("session.started", {"session_id": "s1"})


def test_iso_utc_keeps_milliseconds_and_zone():
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1.9996) == "1970-01-01T00:00:01.999Z"


def test_seq_increases_per_event_and_ids_are_unique():
    reporter = make_reporter(batch_max_events=100)
    for i in range(10):
        reporter.emit("session.counters", {"n": i})
    events = decode(reporter.cut())
    assert [e["seq"] for e in events] == list(range(1, 11))
    assert len({e["id"] for e in events}) == 10
    assert reporter.next_seq == 11


def test_batch_is_ready_when_event_count_reached():
    clock = FakeClock()
    reporter = make_reporter(clock)
    reporter.emit("a", {})
    reporter.emit("a", {})
    assert not reporter.ready(clock.now)
    reporter.emit("a", {})
    assert reporter.ready(clock.now)
    batch = reporter.cut()
    assert (len(batch.lines), batch.first_seq, batch.last_seq) == (3, 1, 3)
    assert not reporter.ready(clock.now)


def test_batch_is_cut_by_bytes():
    probe = make_reporter()
    probe.emit("a", {"pad": "x" * 100, "i": 0})
    event_bytes = probe.cut().nbytes  # every event below encodes to the same size
    clock = FakeClock()
    limit = 2 * event_bytes + event_bytes // 2
    reporter = make_reporter(clock, batch_max_events=100, batch_max_bytes=limit)
    for i in range(2):
        reporter.emit("a", {"pad": "x" * 100, "i": i})
    assert not reporter.ready(clock.now)
    for i in range(2, 5):
        reporter.emit("a", {"pad": "x" * 100, "i": i})
    assert reporter.ready(clock.now)
    batches = reporter.cut_all()
    assert [len(b.lines) for b in batches] == [2, 2, 1]
    assert all(b.nbytes <= limit for b in batches)


def test_batch_is_ready_after_max_delay_of_oldest_event():
    clock = FakeClock(50.0)
    reporter = make_reporter(clock, batch_max_delay=2.0)
    assert reporter.deadline() is None
    reporter.emit("a", {})
    clock.now = 51.0
    reporter.emit("a", {})
    assert reporter.deadline() == 52.0
    assert not reporter.ready(51.999)
    assert reporter.ready(52.0)
    reporter.cut()
    assert reporter.deadline() is None


def test_remaining_events_keep_their_own_age_after_a_cut():
    clock = FakeClock(0.0)
    reporter = make_reporter(clock, batch_max_events=2, batch_max_delay=5.0)
    for t in (0.0, 1.0, 3.0):
        clock.now = t
        reporter.emit("a", {})
    reporter.cut()
    assert reporter.deadline() == 8.0


def test_wakeup_set_on_first_event_and_when_full():
    reporter = make_reporter()
    reporter.emit("a", {})
    assert reporter.wakeup.is_set()
    reporter.wakeup.clear()
    reporter.emit("a", {})
    assert not reporter.wakeup.is_set()
    reporter.emit("a", {})
    assert reporter.wakeup.is_set()


def test_queue_bound_by_events_drops_and_counts():
    reporter = make_reporter(queue_max_events=4, batch_max_events=100)
    for _ in range(7):
        reporter.emit("a", {})
    assert reporter.queued_events == 4
    assert reporter.counters.dropped_queue_full == 3
    assert [e["seq"] for e in decode(reporter.cut())] == [1, 2, 3, 4]  # dropped events use no seq


def test_queue_bound_by_bytes_drops_and_counts():
    reporter = make_reporter(queue_max_bytes=500, batch_max_events=100)
    for _ in range(10):
        reporter.emit("a", {"pad": "y" * 100})
    assert 0 < reporter.queued_events < 10
    assert reporter.counters.dropped_queue_full == 10 - reporter.queued_events


def test_event_larger_than_a_batch_is_dropped_and_counted():
    reporter = make_reporter(batch_max_bytes=200)
    reporter.emit("a", {"pad": "z" * 500})
    assert reporter.queued_events == 0
    assert reporter.counters.dropped_oversize == 1


@pytest.mark.parametrize("kind, data", [
    ("a", {"bad": object()}),
    ("a", {"nan": math.nan}),
    ("a", "not a dict"),
    (None, {}),
])
def test_emit_never_raises_on_bad_input(kind, data, caplog):
    reporter = make_reporter()
    reporter.emit(kind, data)
    reporter.emit(kind, data)
    assert reporter.counters.dropped_invalid == 2
    assert reporter.queued_events == 0
    assert len([r for r in caplog.records if "unencodable" in r.getMessage()]) == 1


def test_null_sink_accepts_anything():
    assert NullSink().emit("session.started", {"x": object()}) is None
