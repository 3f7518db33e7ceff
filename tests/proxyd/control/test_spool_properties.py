"""Property: whatever order batches reach the spool in, with reads and restarts in between, every
event comes back exactly once, and each read returns only seqs below everything still stored."""

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxyd.control.reports import Batch
from proxyd.control.spool import Spool


def make_batches(sizes: list[int]) -> list[Batch]:
    batches, seq = [], 1
    for size in sizes:
        lines = tuple(json.dumps({"id": f"e{s}", "seq": s}).encode() for s in range(seq, seq + size))
        batches.append(Batch(lines, seq, seq + size - 1))
        seq += size
    return batches


operations = st.lists(st.sampled_from(["append", "append", "read", "restart"]), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=12),
       order_keys=st.lists(st.integers(0, 100), min_size=12, max_size=12), ops=operations,
       segment_max_bytes=st.sampled_from([1, 60, 10_000]))
# A late low batch must not become the segment that newer batches are appended to.
@example(sizes=[1, 1, 1, 1], order_keys=[1, 3, 0, 2] + [9] * 8, ops=["append"] * 3 + ["read"],
         segment_max_bytes=10_000)
def test_every_event_once_and_reads_never_jump_ahead(sizes, order_keys, ops, segment_max_bytes):
    batches = make_batches(sizes)
    write_order = [b for _, b in sorted(zip(order_keys, batches, strict=False), key=lambda kb: kb[0])]
    directory = Path(tempfile.mkdtemp())
    try:
        def open_spool():
            return Spool(directory, max_bytes=1 << 30, max_segments=10_000,
                         segment_max_bytes=segment_max_bytes, dead_letter_max_bytes=0)

        spool, pending, delivered = open_spool(), list(write_order), []
        stored: set[int] = set()
        for op in ops + ["read"] * (len(batches) * 4 + 4):
            if op == "append" and pending:
                batch = pending.pop(0)
                assert spool.append(batch)
                stored |= set(range(batch.first_seq, batch.last_seq + 1))
            elif op == "read":
                contents = spool.load_oldest()
                if contents is None:
                    if pending:
                        batch = pending.pop(0)
                        spool.append(batch)
                        stored |= set(range(batch.first_seq, batch.last_seq + 1))
                    continue
                seqs = [json.loads(line)["seq"] for line in contents.lines]
                assert seqs == sorted(seqs)
                stored -= set(seqs)
                assert not stored or max(seqs) < min(stored)
                delivered += seqs
                spool.remove(contents.name)
            elif op == "restart":
                spool = open_spool()
        assert sorted(delivered) == list(range(1, batches[-1].last_seq + 1))
        assert len(delivered) == len(set(delivered))
        assert spool.segments == 0 and spool.bytes == 0
    finally:
        shutil.rmtree(directory)
