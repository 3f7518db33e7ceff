"""content_changed against a real GStreamer RTSP origin: two DESCRIBEs of unchanged content must not
look like a change, although gst-rtsp-server regenerates o= and a=ssrc: on every response."""

import socket
import time
from urllib.parse import urlsplit

import pytest

from proxyd.wm.validators import Validators, content_changed, validators_from_headers

pytestmark = pytest.mark.peers
DEADLINE_S = 15.0


def describe(url: str, cseq: int) -> tuple[list[tuple[str, str]], bytes]:
    parts = urlsplit(url)
    deadline = time.monotonic() + DEADLINE_S
    with socket.create_connection((parts.hostname, parts.port or 554), timeout=DEADLINE_S) as sock:
        sock.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: {cseq}\r\nAccept: application/sdp\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            assert time.monotonic() < deadline, "no DESCRIBE response head"
            chunk = sock.recv(65536)
            assert chunk, "origin closed the connection"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        assert " 200 " in status, status
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
        length = int(dict((n.lower(), v) for n, v in headers).get("content-length", "0"))
        while len(body) < length:
            assert time.monotonic() < deadline, "short DESCRIBE body"
            chunk = sock.recv(65536)
            assert chunk, "origin closed the connection"
            body += chunk
    return headers, body[:length]


def test_unchanged_content_is_not_a_change(shared_gst_origin):
    url = shared_gst_origin.url("/clip")
    first_headers, first = describe(url, 1)
    second_headers, second = describe(url, 2)
    assert first != second  # the origin regenerates volatile lines, so a naive comparison would fail
    assert not content_changed(validators_from_headers(first_headers), validators_from_headers(second_headers),
                               first, second)


def test_a_different_presentation_is_a_change(shared_gst_origin):
    _, clip = describe(shared_gst_origin.url("/clip"), 1)
    _, live = describe(shared_gst_origin.url("/live"), 2)
    assert content_changed(Validators(), Validators(), clip, live)
