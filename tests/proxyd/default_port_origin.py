"""A GStreamer origin on the default port 554 whose Content-Base never names the port, as servers
on 554 answer (tests/peers/gst_origin.py --content-base portless). Each origin binds its own
127.0.0.N:554 (root needed below 1024), so parallel runs do not collide."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator

import pytest

from tests.peers.origin import GstOrigin, OriginError, PeerMissing, check_gst_origin_available

DEFAULT_PORT = 554
BIND_ATTEMPTS = 4  # another run may take the 127.0.0.N we picked before our origin binds it


class PortlessOrigin(GstOrigin):
    def argv(self, port: int) -> list[str]:
        return [*super().argv(port), "--content-base", "portless"]


def free_loopback_host() -> str:
    for n in random.sample(range(2, 255), 253):
        host = f"127.0.0.{n}"
        with socket.socket() as probe:
            try:
                probe.bind((host, DEFAULT_PORT))
            except OSError:
                continue
            return host
    raise OSError(f"no 127.0.0.N has TCP port {DEFAULT_PORT} free")


@contextlib.contextmanager
def portless_origin_on_554(**options) -> Iterator[PortlessOrigin]:
    """PortlessOrigin(**options) started on a free 127.0.0.N:554; skips when GStreamer is missing."""
    try:
        check_gst_origin_available()
    except PeerMissing as exc:
        pytest.skip(str(exc))
    for attempt in range(BIND_ATTEMPTS):
        origin = PortlessOrigin(host=free_loopback_host(), port=DEFAULT_PORT, **options)
        try:
            origin.start()
        except OriginError:
            if attempt == BIND_ATTEMPTS - 1:
                raise
            continue
        try:
            yield origin
        finally:
            origin.stop()
        return
