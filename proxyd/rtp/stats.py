"""Per-stream RTP counters: packets, bytes, loss from sequence gaps, jitter.

Sequence tracking follows RFC 3550 A.1 (extended highest sequence number, tolerant of wrap,
reordering and duplicates; a large jump is only believed once two packets confirm it). Jitter is
either computed from arrival times (RFC 3550 A.8; the caller passes arrival time converted to RTP
clock units, so no clock is read here) or taken from the peer's RR report blocks.
Only ints/floats are updated per packet: no objects are allocated on the hot path.
"""

from __future__ import annotations

from .rtcp import ReportBlock

SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100


class StreamStats:
    __slots__ = (
        "packets", "bytes", "base_seq", "max_seq", "cycles", "bad_seq", "received",
        "expected_prior", "received_prior", "jitter", "_last_transit",
        "remote_fraction_lost", "remote_cumulative_lost", "remote_highest_seq", "remote_jitter",
    )

    def __init__(self) -> None:
        self.packets = 0  # every packet seen, including duplicates and rejected jumps
        self.bytes = 0
        self.base_seq = -1  # -1: no packet yet
        self.max_seq = 0
        self.cycles = 0
        self.bad_seq = SEQ_MOD + 1
        self.received = 0  # packets accepted into the sequence space
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0  # RFC 3550 A.8 estimate, RTP timestamp units
        self._last_transit: float | None = None
        self.remote_fraction_lost = 0
        self.remote_cumulative_lost = 0
        self.remote_highest_seq = 0
        self.remote_jitter = 0  # from the last RR block, RTP timestamp units

    def _restart(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def on_packet(self, seq: int, nbytes: int) -> bool:
        """Count one packet; False when it was a jump not (yet) believed, as in RFC 3550 A.1."""
        self.packets += 1
        self.bytes += nbytes
        if self.base_seq < 0:
            self._restart(seq)
            self.received = 1
            return True
        udelta = (seq - self.max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            if seq != self.bad_seq:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
            self._restart(seq)  # two sequential packets after a jump: the source restarted
        # else: duplicate or reordered packet, counted but max_seq unchanged
        self.received += 1
        return True

    def on_arrival(self, rtp_timestamp: int, arrival: float) -> None:
        """Update the A.8 jitter estimate; `arrival` is in the stream's RTP clock units."""
        transit = arrival - rtp_timestamp
        last = self._last_transit
        self._last_transit = transit
        if last is not None:
            d = transit - last
            if d < 0:
                d = -d
            self.jitter += (d - self.jitter) / 16.0

    def on_report_block(self, block: ReportBlock) -> None:
        """Record what the receiving peer reported about this stream in an RR/SR block."""
        self.remote_fraction_lost = block.fraction_lost
        self.remote_cumulative_lost = block.cumulative_lost
        self.remote_highest_seq = block.highest_seq
        self.remote_jitter = block.jitter

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return 0 if self.base_seq < 0 else self.extended_max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (never negative here, although duplicates can make A.3 go below 0)."""
        return max(0, self.expected - self.received)

    def interval_report(self) -> tuple[int, int]:
        """(fraction_lost 0..255, cumulative_lost) for an RR block; starts a new interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        cumulative = max(-0x800000, min(0x7FFFFF, expected - self.received))
        return min(fraction, 255), cumulative

    def jitter_ms(self, clock_rate: int) -> float:
        """Jitter in milliseconds: our own A.8 estimate when we have one, else the peer's RR value."""
        if clock_rate <= 0:
            return 0.0
        units = self.jitter if self._last_transit is not None else float(self.remote_jitter)
        return units * 1000.0 / clock_rate
