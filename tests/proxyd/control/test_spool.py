"""Spool: seq-ordered segments, fsync'd appends, caps with drop counters, torn lines, dead letters."""

import json
import logging

from proxyd.control.reports import Batch
from proxyd.control.spool import Spool


def batch(first: int, last: int, pad: str = "") -> Batch:
    lines = tuple(json.dumps({"id": f"id-{s}", "seq": s, "kind": "k", "data": {"pad": pad}}).encode()
                  for s in range(first, last + 1))
    return Batch(lines, first, last)


def make_spool(path, **overrides) -> Spool:
    values = dict(max_bytes=1 << 20, max_segments=100, segment_max_bytes=64 << 10,
                  dead_letter_max_bytes=1 << 20)
    values.update(overrides)
    return Spool(path, **values)


def seqs(contents) -> list[int]:
    return [json.loads(line)["seq"] for line in contents.lines]


def drain(spool: Spool) -> list[int]:
    out = []
    while (contents := spool.load_oldest()) is not None:
        out += seqs(contents)
        spool.remove(contents.name)
    return out


def test_appends_share_a_segment_and_come_back_in_order(tmp_path):
    spool = make_spool(tmp_path)
    assert spool.append(batch(1, 3)) and spool.append(batch(4, 5))
    assert spool.segments == 1
    contents = spool.load_oldest()
    assert seqs(contents) == [1, 2, 3, 4, 5]
    spool.remove(contents.name)
    assert (spool.segments, spool.bytes, spool.load_oldest()) == (0, 0, None)
    assert list(tmp_path.glob("*.jsonl")) == []


def test_an_older_batch_written_late_is_still_delivered_first(tmp_path):
    spool = make_spool(tmp_path)
    spool.append(batch(10, 12))
    spool.append(batch(1, 3))  # e.g. the in-flight batch that failed after newer ones were spooled
    spool.append(batch(13, 14))
    assert spool.oldest_first_seq() == 1
    assert drain(spool) == [1, 2, 3, 10, 11, 12, 13, 14]


def test_reading_seals_the_segment_so_new_appends_start_another(tmp_path):
    spool = make_spool(tmp_path)
    spool.append(batch(1, 2))
    contents = spool.load_oldest()
    spool.append(batch(3, 4))
    assert seqs(contents) == [1, 2]
    assert spool.segments == 2
    spool.remove(contents.name)
    assert drain(spool) == [3, 4]


def test_segments_roll_over_at_segment_max_bytes(tmp_path):
    spool = make_spool(tmp_path, segment_max_bytes=300)
    for first in range(1, 10, 2):
        spool.append(batch(first, first + 1))
    assert spool.segments > 1
    assert drain(spool) == list(range(1, 11))


def test_byte_cap_drops_and_counts_events(tmp_path, caplog):
    one = batch(1, 2, pad="x" * 100)
    spool = make_spool(tmp_path, max_bytes=one.nbytes * 2 + 10)
    with caplog.at_level(logging.ERROR):
        assert spool.append(batch(1, 2, pad="x" * 100))
        assert spool.append(batch(3, 4, pad="x" * 100))
        assert not spool.append(batch(5, 6, pad="x" * 100))
        assert not spool.append(batch(7, 7, pad="x" * 100))
    assert spool.counters.dropped_full == 3
    assert len([r for r in caplog.records if "spool full" in r.getMessage()]) == 1
    assert drain(spool) == [1, 2, 3, 4]
    assert spool.append(batch(8, 8))  # room again after delivery


def test_segment_count_cap_drops_and_counts_events(tmp_path):
    spool = make_spool(tmp_path, max_segments=2, segment_max_bytes=1)  # every batch needs a new segment
    assert spool.append(batch(1, 1)) and spool.append(batch(2, 2))
    assert not spool.append(batch(3, 5))
    assert spool.counters.dropped_full == 3
    assert spool.segments == 2


def test_torn_last_line_after_crash_is_skipped_and_logged(tmp_path, caplog):
    spool = make_spool(tmp_path)
    spool.append(batch(1, 4))
    [segment] = tmp_path.glob("*.jsonl")
    raw = segment.read_bytes()
    segment.write_bytes(raw[: len(raw) - 20])  # crash in the middle of writing event 4
    restarted = make_spool(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert seqs(restarted.load_oldest()) == [1, 2, 3]
    assert restarted.counters.corrupt_lines == 1
    assert any("torn" in r.getMessage() for r in caplog.records)


def test_restart_never_appends_after_a_torn_line(tmp_path):
    spool = make_spool(tmp_path)
    spool.append(batch(1, 2))
    [segment] = tmp_path.glob("*.jsonl")
    segment.write_bytes(segment.read_bytes()[:-5])
    restarted = make_spool(tmp_path)
    assert restarted.max_seq() == 1
    restarted.append(batch(3, 4))
    assert restarted.segments == 2
    assert drain(restarted) == [1, 3, 4]


def test_corrupt_line_in_the_middle_is_skipped(tmp_path):
    spool = make_spool(tmp_path)
    spool.append(batch(1, 1))
    [segment] = tmp_path.glob("*.jsonl")
    segment.write_bytes(segment.read_bytes() + b"{not json\n" + batch(2, 2).lines[0] + b"\n")
    restarted = make_spool(tmp_path)
    assert drain(restarted) == [1, 2]
    assert restarted.counters.corrupt_lines == 1


def test_max_seq_survives_restart(tmp_path):
    spool = make_spool(tmp_path)
    assert spool.max_seq() is None
    spool.append(batch(5, 9))
    spool.append(batch(1, 2))
    assert make_spool(tmp_path).max_seq() == 9


def test_dead_letter_is_bounded_and_kept_apart(tmp_path):
    spool = make_spool(tmp_path, dead_letter_max_bytes=batch(1, 2).nbytes + 5)
    assert spool.dead_letter(batch(1, 2).lines, 1)
    assert not spool.dead_letter(batch(3, 3).lines, 3)
    assert (spool.counters.dead_lettered, spool.counters.dead_letter_dropped) == (2, 1)
    assert spool.segments == 0 and spool.load_oldest() is None
    [dead] = (tmp_path / "dead").glob("*.jsonl")
    assert [json.loads(line)["seq"] for line in dead.read_bytes().splitlines()] == [1, 2]


def test_files_are_private(tmp_path):
    spool = make_spool(tmp_path / "spool")
    spool.append(batch(1, 1))
    [segment] = (tmp_path / "spool").glob("*.jsonl")
    assert segment.stat().st_mode & 0o077 == 0
    assert (tmp_path / "spool").stat().st_mode & 0o077 == 0


def test_unreadable_segment_is_moved_aside_not_deleted(tmp_path, caplog):
    spool = make_spool(tmp_path)
    spool.append(batch(1, 2))
    spool.load_oldest()  # seal it
    spool.append(batch(3, 4))
    first = sorted(tmp_path.glob("*.jsonl"))[0]
    first.unlink()
    first.mkdir()  # reading it now fails with an OSError
    with caplog.at_level(logging.ERROR):
        assert spool.load_oldest() is None  # the caller asks again
    assert seqs(spool.load_oldest()) == [3, 4]
    assert (tmp_path / "dead" / ("unreadable-" + first.name)).is_dir()
    assert any("cannot read report spool segment" in r.getMessage() for r in caplog.records)
