"""StreamStats: RFC 3550 A.1 sequence accounting, A.3 loss, A.8 jitter, RR-reported values."""

from __future__ import annotations

import random

import pytest

from proxyd.rtp.packet import ReportBlock
from proxyd.rtp.stats import StreamStats


def feed(seqs, size: int = 100) -> StreamStats:
    stats = StreamStats()
    for seq in seqs:
        stats.on_packet(seq, size)
    return stats


def test_in_order_no_loss() -> None:
    stats = feed(range(1000, 1100), size=1400)
    assert (stats.packets, stats.bytes, stats.expected, stats.received, stats.lost) == (100, 140000, 100, 100, 0)


def test_gap_counts_as_loss_across_wrap() -> None:
    seqs = [s & 0xFFFF for s in range(65500, 65600) if s not in (65534, 65536, 65537)]
    stats = feed(seqs)
    assert stats.cycles == 1 << 16 and stats.extended_max_seq == 65599
    assert (stats.expected, stats.lost) == (100, 3)


def test_reordering_is_not_loss() -> None:
    seqs = list(range(0, 200))
    rng = random.Random(7)
    for i in range(10, 200, 10):  # shuffle inside windows of 10 (the first packet sets the base)
        window = seqs[i : i + 10]
        rng.shuffle(window)
        seqs[i : i + 10] = window
    stats = feed(seqs)
    assert (stats.expected, stats.lost) == (200, 0)


def test_large_jump_needs_confirmation_then_restarts() -> None:
    stats = feed([10, 11, 12])
    assert stats.on_packet(40000, 100) is False  # one stray packet is not believed
    assert stats.expected == 3
    assert stats.on_packet(40001, 100) is True  # two in a row: the source restarted
    assert (stats.base_seq, stats.expected, stats.received, stats.packets) == (40001, 1, 1, 5)


def test_interval_report_fraction_and_cumulative() -> None:
    stats = feed([s for s in range(0, 100) if s % 4 != 3])  # every 4th lost; the last one seen is 98
    fraction, cumulative = stats.interval_report()
    assert cumulative == stats.expected - stats.received == 24
    assert fraction == (24 << 8) // 99
    for s in range(100, 200):
        stats.on_packet(s, 100)
    # 99 was lost too, but is only known once 100 arrived: 1 of 101 in the second interval
    assert stats.interval_report() == ((1 << 8) // 101, 25)
    for s in range(200, 300):
        stats.on_packet(s, 100)
    assert stats.interval_report() == (0, 25)


def test_jitter_from_arrival_times() -> None:
    stats = StreamStats()
    clock = 90000
    for i in range(200):  # 30 fps; every other packet arrives 9 ms (810 units) late
        ts = i * 3000
        arrival = 1_000_000 + ts + (810 if i % 2 else 0)
        stats.on_packet(i, 1000)
        stats.on_arrival(ts, arrival)
    assert stats.jitter == pytest.approx(810, rel=0.01)
    assert stats.jitter_ms(clock) == pytest.approx(9.0, rel=0.01)


def test_constant_delay_has_no_jitter() -> None:
    stats = StreamStats()
    for i in range(50):
        stats.on_arrival(i * 160, 5000 + i * 160)
    assert stats.jitter == 0.0


def test_jitter_from_receiver_reports_when_not_measured() -> None:
    stats = StreamStats()
    stats.on_report_block(ReportBlock(1, 64, 17, 0x10005, 900, 0, 0))
    assert (stats.remote_fraction_lost, stats.remote_cumulative_lost, stats.remote_highest_seq) == (64, 17, 0x10005)
    assert stats.jitter_ms(90000) == pytest.approx(10.0)
    assert stats.jitter_ms(0) == 0.0


def test_slots_forbid_stray_attributes() -> None:
    with pytest.raises(AttributeError):
        StreamStats().extra = 1  # type: ignore[attr-defined]
