"""Access to the spec-derived fixtures in tests/fixtures/wm (see each file's source section)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wm"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def split_message(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Start line, header pairs and body of one raw RTSP fixture (no folding, CRLF kept)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    start, *lines = head.decode("ascii").split("\r\n")
    headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
    return start, headers, body
