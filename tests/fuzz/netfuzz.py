"""Network fuzzer: mutated RTSP requests and interleaved frames sent to a running proxyd.

Each input is one TCP connection: a request sequence built from the proxy's own URLs (OPTIONS,
DESCRIBE, SETUP interleaved, PLAY, GET_PARAMETER, TEARDOWN), sometimes preceded by a valid
DESCRIBE/SETUP so the mutation lands inside a live session, then mutated (byte flips, insertions,
deletions, duplicated or truncated spans, '$' frames with random channels and lengths spliced in).
The fuzzer reads whatever comes back until the proxy closes or goes quiet, and records the outcome:
"answered" (RTSP responses seen), "closed" (closed without an answer) or "silent" (neither within
`quiet` seconds after sending: a hang unless the input left a head incomplete, which the proxy's
--request-timeout then closes).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

METHODS = ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "GET_PARAMETER", "SET_PARAMETER", "TEARDOWN",
           "ANNOUNCE", "RECORD", "FOO")
HEADER_VALUES = {
    "Transport": ["RTP/AVP/TCP;unicast;interleaved=0-1", "RTP/AVP;unicast;client_port=40000-40001",
                  "RTP/AVP/TCP;interleaved=255-256", "RTP/AVP;multicast", ""],
    "Range": ["npt=0-", "npt=now-", "npt=2.5-", "npt=-1-", "clock=19961108T142300Z-", "npt=99999999999-"],
    "Session": ["12345678", "x" * 300, "1;timeout=0"],
    "Accept": ["application/sdp"],
    "Content-Length": ["0", "5", "-1", "99999999999999", "4"],
    "Scale": ["1", "-1", "0", "nan"],
    "User-Agent": ["WMPlayer/12.0.7601.17514 guid/3300AD50-2C39-46C0-AE0A-C4D98694D7B4", "ffmpeg", "\x01"],
    "Supported": ["com.microsoft.wm.srvppair, com.microsoft.wm.sswitch, com.microsoft.wm.eosmsg"],
}


@dataclass
class Outcomes:
    counts: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    inputs: int = 0


def request(rng: random.Random, method: str, url: str, cseq: int) -> bytes:
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}"]
    for name in rng.sample(sorted(HEADER_VALUES), rng.randint(0, 4)):
        lines.append(f"{name}: {rng.choice(HEADER_VALUES[name])}")
    body = b""
    if rng.random() < 0.1:
        body = rng.randbytes(rng.randint(1, 64))
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def frame(rng: random.Random) -> bytes:
    length = rng.choice([0, 1, 12, 100, 1400, 65535])
    payload = rng.randbytes(min(length, rng.choice([length, 64])))  # often shorter than announced
    return b"$" + bytes([rng.randrange(256)]) + length.to_bytes(2, "big") + payload


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[at:at] = rng.choice([b"\r\n", b"\n", b"\x00", b":", b" ", b"$", b"RTSP/1.0", b"\r\n\r\n",
                                     rng.randbytes(rng.randint(1, 16))])
        elif op == 2 and buf:
            del buf[at:at + rng.randint(1, 32)]
        elif op == 3 and buf:
            span = buf[at:at + rng.randint(1, 64)]
            buf[at:at] = span * rng.randint(1, 50)
        elif op == 4:
            buf[at:at] = frame(rng)
        else:
            buf = buf[:at]
    return bytes(buf)


def one_input(rng: random.Random, base_url: str, media_urls: list[str]) -> tuple[bytes, bytes]:
    """(valid prefix, mutated part) for one connection."""
    prefix = b""
    if rng.random() < 0.3:
        prefix = request(rng, "DESCRIBE", base_url, 1)
        if media_urls:
            prefix += (f"SETUP {media_urls[0]} RTSP/1.0\r\nCSeq: 2\r\n"
                       "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n").encode()
    parts = []
    for i in range(rng.randint(1, 4)):
        method = rng.choice(METHODS)
        url = rng.choice([base_url, *media_urls, "*", "rtsp://[::1", "rtsp://example.invalid/x", "/rel"])
        parts.append(request(rng, method, url, 10 + i))
        if rng.random() < 0.3:
            parts.append(frame(rng))
    return prefix, mutate(rng, b"".join(parts))


async def send_one(host: str, port: int, prefix: bytes, data: bytes, quiet: float) -> tuple[str, list[int]]:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "connect-failed", []
    received = b""
    outcome = "silent"
    try:
        writer.write(prefix + data)
        await writer.drain()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), quiet)
            except TimeoutError:
                break
            if not chunk:
                outcome = "closed"
                break
            received += chunk
    except ConnectionError:
        outcome = "closed"
    finally:
        writer.close()
    statuses = [int(line[9:12]) for line in received.split(b"\r\n")
                if line.startswith(b"RTSP/1.0 ") and line[9:12].isdigit()]
    if statuses and outcome == "silent":
        outcome = "answered"
    elif statuses:
        outcome = "answered+closed"
    return outcome, statuses


async def fuzz(host: str, port: int, base_url: str, media_urls: list[str], *, inputs: int, seed: int = 1,
               concurrency: int = 20, quiet: float = 1.0) -> Outcomes:
    rng = random.Random(seed)
    out = Outcomes()
    jobs = [one_input(rng, base_url, media_urls) for _ in range(inputs)]
    gate = asyncio.Semaphore(concurrency)

    async def run(prefix: bytes, data: bytes) -> None:
        async with gate:
            outcome, statuses = await send_one(host, port, prefix, data, quiet)
        out.counts[outcome] += 1
        out.statuses.update(statuses)
        out.inputs += 1

    await asyncio.gather(*(run(p, d) for p, d in jobs))
    return out
