"""Key-frame starts per payload format: H.264 (RFC 6184) and x-asf-pf ([MS-RTSP] 2.2.1)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from proxyd.rtp.keyframe import asf_key_start, h264_key_start, key_start_test
from tests.wmorigin.content import make_item

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"
S, L, R = 0x80, 0x40, 0x20


def rtp(payload: bytes, *, cc: int = 0, ext_words: int | None = None) -> bytes:
    head = struct.pack("!BBHII", 0x80 | cc | (0x10 if ext_words is not None else 0), 96, 7, 1000, 0x1234)
    head += bytes(4 * cc)
    if ext_words is not None:
        head += struct.pack("!HH", 0xBEDE, ext_words) + bytes(4 * ext_words)
    return head + payload


def asf_header(flags: int, value: int) -> bytes:
    """One x-asf-pf payload header: flags byte, then Length (L=1) or Offset (L=0), 24 bits."""
    return struct.pack("!I", (flags << 24) | value)


ASF_PACKET = bytes(range(200))
ASF_CASES = [
    ("key whole packet", rtp(asf_header(S | L, 200) + ASF_PACKET), True),
    ("key first fragment", rtp(asf_header(S, 0) + ASF_PACKET), True),
    ("key continuation fragment", rtp(asf_header(S, 1196) + ASF_PACKET), False),
    ("key fragment at offset 65536", rtp(asf_header(S, 0x10000) + ASF_PACKET), False),
    ("non-key whole packet", rtp(asf_header(L, 200) + ASF_PACKET), False),
    ("non-key first fragment", rtp(asf_header(0, 0) + ASF_PACKET), False),
    ("key with relative timestamp", rtp(asf_header(S | L | R, 200) + b"\0\0\0\x05" + ASF_PACKET), True),
    ("key after CSRCs", rtp(asf_header(S | L, 200) + ASF_PACKET, cc=2), True),
    ("key after a header extension", rtp(asf_header(S | L, 200) + ASF_PACKET, ext_words=2), True),
    ("header only, no payload header", rtp(b""), False),
    ("truncated payload header", rtp(b"\xc0\x00"), False),
    ("MS-RTSP fixture (L, no S)", (FIXTURES / "rtp_asf_pf.bin").read_bytes(), False),
]


@pytest.mark.parametrize(("data", "key"), [c[1:] for c in ASF_CASES], ids=[c[0] for c in ASF_CASES])
def test_asf_key_start(data: bytes, key: bool) -> None:
    assert asf_key_start(data) is key
    # In place in a larger receive buffer, as the split calls it: only buf[:end] counts.
    buf = bytearray(65536)
    buf[:len(data)] = data
    assert asf_key_start(memoryview(buf), len(data)) is key


def test_asf_extension_longer_than_the_packet_is_not_a_key_start() -> None:
    data = rtp(asf_header(S | L, 4) + b"abcd", ext_words=0)
    data = data[:12] + struct.pack("!HH", 0xBEDE, 200) + data[16:]  # 800 extension bytes claimed
    assert not asf_key_start(data)


@pytest.mark.parametrize(("name", "key"), [
    ("rtp_h264_fua_idr_start.bin", True),
    ("rtp_h264_stapa_sps_pps.bin", True),
    ("rtp_h264_fua_idr_middle.bin", False),
    ("rtp_h264_non_idr.bin", False),
])
def test_h264_key_start(name: str, key: bool) -> None:
    data = (FIXTURES / name).read_bytes()
    assert h264_key_start(data) is key
    buf = bytearray(65536)
    buf[:len(data)] = data
    assert h264_key_start(memoryview(buf), len(data)) is key
    assert h264_key_start(data, 12) is False  # no payload


def test_h264_key_start_skips_csrcs_and_extension() -> None:
    assert h264_key_start(rtp(b"\x65\x88", cc=1, ext_words=1))
    assert not h264_key_start(rtp(b"\x41\x9a", cc=1, ext_words=1))


@pytest.mark.parametrize(("fu_header", "key"), [
    (0x85, True),   # start of an IDR slice
    (0xC5, True),   # start and end of an IDR slice (a one-fragment FU)
    (0x87, True),   # start of an SPS
    (0x05, False),  # middle of an IDR slice
    (0x45, False),  # end of an IDR slice
    (0x81, False),  # start of a non-IDR slice
    (0xA5, True),   # reserved bit set: still a start of an IDR slice
])
def test_h264_fu_a_is_decided_by_its_fu_header_with_and_without_csrcs(fu_header: int, key: bool) -> None:
    payload = bytes([0x7C, fu_header]) + bytes(1000)
    assert h264_key_start(rtp(payload)) is key  # payload at 12: decided without the general parser
    assert h264_key_start(rtp(payload, cc=2)) is key
    assert h264_key_start(rtp(payload, ext_words=1)) is key


def test_an_fu_a_indicator_without_its_header_is_not_a_key_start() -> None:
    assert not h264_key_start(rtp(b"\x7c"))
    assert not h264_key_start(rtp(b"\x7c", cc=1))


def test_tests_by_rtpmap_encoding_name() -> None:
    assert key_start_test("H264") is h264_key_start and key_start_test("h264") is h264_key_start
    assert key_start_test("x-asf-pf") is asf_key_start and key_start_test("X-ASF-PF") is asf_key_start
    assert key_start_test("MPEG4-GENERIC") is None and key_start_test("x-wms-rtx") is None


def test_asf_starts_match_the_wm_origin_packetizer() -> None:
    """Against the spec-built WM test origin's x-asf-pf packets: exactly the first RTP packet of
    each key ASF packet is a start (its other fragments and every non-key packet are not)."""
    item = make_item("keyframe-test", 1, 3000, 1200, 1)
    video = [s.payload for s in item.schedule if s.stream == 2]
    starts = [i for i, p in enumerate(video) if asf_key_start(rtp(p.data))]
    first_of_key_packet = [i for i, p in enumerate(video) if p.key and (
        i == 0 or video[i - 1].first_packet != p.first_packet)]
    assert starts == first_of_key_packet
    assert 3 <= len(starts) < len([p for p in video if p.key])  # key frames span several RTP packets
