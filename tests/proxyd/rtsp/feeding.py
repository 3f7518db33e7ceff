"""Helpers shared by the RTSP core tests: fixture loading and feeding strategies."""

from __future__ import annotations

from pathlib import Path

from proxyd.rtsp.connection import ParserLimits, Role, RtspConnection
from proxyd.rtsp.events import NEED_DATA, ConnectionClosed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtsp"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def drain(conn: RtspConnection) -> list:
    """Pull events until NEED_DATA or ConnectionClosed (the terminal one is not included)."""
    events = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or isinstance(event, ConnectionClosed):
            return events
        events.append(event)


def feed_whole(data: bytes, role: Role, limits: ParserLimits | None = None) -> list:
    conn = RtspConnection(role, limits)
    conn.receive_data(data)
    return drain(conn)


def feed_bytewise(data: bytes, role: Role, limits: ParserLimits | None = None) -> list:
    conn = RtspConnection(role, limits)
    events = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        events.extend(drain(conn))
    return events


def feed_chunks(data: bytes, role: Role, size: int) -> list:
    conn = RtspConnection(role)
    events = []
    for i in range(0, len(data), size):
        conn.receive_data(data[i : i + size])
        events.extend(drain(conn))
    return events
