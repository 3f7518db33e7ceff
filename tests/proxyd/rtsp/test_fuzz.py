"""Hypothesis: arbitrary and mutated input yields only events or RtspError, however it is split."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyd.rtsp.connection import ParserLimits, Role, RtspConnection
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed, InterleavedFrame, Request, Response

from .feeding import FIXTURES

FIXTURE_BYTES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.rtsp"))]
LIMITS = ParserLimits(max_header_bytes=2048, max_headers=24, max_body_bytes=4096, max_frame_bytes=2048)
EVENT_TYPES = (Request, Response, InterleavedFrame)


def run(data: bytes, role: Role, cuts: list[int]) -> tuple[list, tuple | None]:
    """Feed `data` split at `cuts`, then EOF; return (events, (error type, status) or None)."""
    conn = RtspConnection(role, LIMITS)
    events: list = []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    try:
        for piece in [*(p for p in pieces if p), b""]:
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
                assert isinstance(event, EVENT_TYPES)
                events.append(event)
            if isinstance(event, ConnectionClosed):
                break
    except RtspError as exc:
        assert conn.broken
        return events, (type(exc), exc.status_hint)
    return events, None


def cut_points(data: bytes):
    return st.lists(st.integers(0, len(data)), max_size=12).map(sorted)


@st.composite
def mutated_fixture(draw):
    data = bytearray(draw(st.sampled_from(FIXTURE_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        if action == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif action == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b"\n", b"$", b":", b" ", b"\x00", b"9" * 7,
                                                  b"Content-Length: 99999999\r\n", b"RTSP/1.0"]))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600), role=st.sampled_from(list(Role)), cuts=st.data())
def test_arbitrary_bytes(data: bytes, role: Role, cuts) -> None:
    whole = run(data, role, [])
    assert run(data, role, cuts.draw(cut_points(data))) == whole


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_fixture(), role=st.sampled_from(list(Role)), cuts=st.data())
def test_mutated_fixtures(data: bytes, role: Role, cuts) -> None:
    whole = run(data, role, [])
    assert run(data, role, cuts.draw(cut_points(data))) == whole


@settings(max_examples=100, deadline=None)
@given(data=st.lists(st.sampled_from(FIXTURE_BYTES), min_size=1, max_size=4).map(b"".join),
       role=st.sampled_from(list(Role)), cuts=st.data())
def test_concatenated_fixtures_parse_cleanly(data: bytes, role: Role, cuts) -> None:
    events, error = run(data, role, cuts.draw(cut_points(data)))
    assert error is None and events
