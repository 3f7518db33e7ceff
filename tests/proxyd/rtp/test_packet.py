"""RTP header parsing, in-place rewrite, byte-exact re-encoding, wraparound and H.264 key frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyd.rtp.packet import (
    PacketError,
    RtpPacket,
    is_h264_keyframe,
    rewrite_rtp_header,
    rtp_header,
    seq_add,
    seq_diff,
    seq_newer,
    ts_add,
    ts_diff,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"
RTP_FIXTURES = ["rtp_asf_pf.bin", "rtp_csrc_ext_padding.bin", "rtp_h264_fua_idr_middle.bin",
                "rtp_h264_fua_idr_start.bin", "rtp_h264_non_idr.bin", "rtp_h264_stapa_sps_pps.bin"]


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize("name", RTP_FIXTURES)
def test_fixture_reencodes_byte_exactly(name: str) -> None:
    data = load(name)
    assert RtpPacket.parse(data).to_bytes() == data
    assert RtpPacket.parse(memoryview(data)).to_bytes() == data
    assert RtpPacket.parse(bytearray(data)).to_bytes() == data


def test_header_fields_with_csrc_extension_and_padding() -> None:
    data = load("rtp_csrc_ext_padding.bin")
    marker, pt, seq, ts, ssrc, offset, end = rtp_header(data)
    assert (marker, pt, seq, ts, ssrc) == (0, 97, 65535, 0xFFFFFFF0, 0x0D1E2F30)
    assert data[offset:end] == b"AAC-frame-bytes!"
    packet = RtpPacket.parse(data)
    assert packet.csrcs == (0x11111111, 0x22222222)
    assert (packet.extension_profile, packet.extension) == (0xBEDE, b"\x10\xab\x00\x00")
    assert packet.padding == b"\x00\x00\x00\x04"


def test_asf_pf_marker_and_payload() -> None:
    data = load("rtp_asf_pf.bin")
    marker, pt, seq, ts, ssrc, offset, end = rtp_header(data)
    assert (marker, pt, seq, ts, ssrc, offset, end) == (1, 96, 1, 0, 0x5A5A0001, 12, len(data))


def test_rewrite_in_place_keeps_everything_else() -> None:
    original = load("rtp_h264_fua_idr_start.bin")
    buf = bytearray(original)
    rewrite_rtp_header(buf, 70000, -1, 0x1_DEADBEEF)  # masks to field width
    marker, pt, seq, ts, ssrc, offset, _ = rtp_header(buf)
    assert (seq, ts, ssrc) == (70000 & 0xFFFF, 0xFFFFFFFF, 0xDEADBEEF)
    assert buf[:2] == original[:2] and buf[12:] == original[12:]


@pytest.mark.parametrize(("name", "message"), [
    ("rtp_truncated.bin", "RTP packet truncated: 9 bytes, fixed header needs 12"),
    ("rtp_bad_version.bin", "bad RTP version 1 (expected 2)"),
])
def test_bad_fixtures_raise_exact_errors(name: str, message: str) -> None:
    with pytest.raises(PacketError) as info:
        rtp_header(load(name))
    assert str(info.value) == message
    with pytest.raises(PacketError):
        RtpPacket.parse(load(name))


@pytest.mark.parametrize(("data", "message"), [
    (b"\x82\x60" + bytes(14), "RTP packet truncated: 16 bytes, header needs 20"),
    (b"\x90\x60" + bytes(12), "RTP packet truncated: 14 bytes, header extension needs 16"),
    (b"\x90\x60" + bytes(10) + b"\xbe\xde\x00\x02" + bytes(4), "RTP packet truncated: 20 bytes, header needs 24"),
    (b"\xa0\x60" + bytes(10) + b"ab\x00", "bad RTP padding length 0 for 3 bytes after the header"),
    (b"\xa0\x60" + bytes(10) + b"ab\x09", "bad RTP padding length 9 for 3 bytes after the header"),
    (b"", "RTP packet truncated: 0 bytes, fixed header needs 12"),
])
def test_truncated_variants(data: bytes, message: str) -> None:
    with pytest.raises(PacketError) as info:
        rtp_header(data)
    assert str(info.value) == message


def test_every_truncation_of_a_fixture_raises_or_parses_consistently() -> None:
    data = load("rtp_csrc_ext_padding.bin")
    for size in range(len(data)):
        try:
            rtp_header(data[:size])
        except PacketError:
            continue
        # a prefix that parses must at least hold the header with CSRCs and extension
        assert size >= 12 + 8 + 8


def test_sequence_wraparound() -> None:
    assert seq_diff(0, 65535) == 1 and seq_diff(65535, 0) == -1
    assert seq_diff(100, 100) == 0 and seq_diff(32767, 0) == 32767 and seq_diff(32768, 0) == -32768
    assert seq_newer(2, 65530) and not seq_newer(65530, 2)
    assert seq_add(65535, 2) == 1 and seq_add(0, -1) == 65535
    assert ts_diff(5, 0xFFFFFFFB) == 10 and ts_diff(0xFFFFFFFB, 5) == -10
    assert ts_add(0xFFFFFFFF, 90000) == 89999


@pytest.mark.parametrize(("name", "key"), [
    ("rtp_h264_fua_idr_start.bin", True),
    ("rtp_h264_stapa_sps_pps.bin", True),
    ("rtp_h264_fua_idr_middle.bin", False),
    ("rtp_h264_non_idr.bin", False),
])
def test_h264_keyframe_detection(name: str, key: bool) -> None:
    data = load(name)
    _, _, _, _, _, offset, end = rtp_header(data)
    assert is_h264_keyframe(data, offset, end) is key
    assert is_h264_keyframe(memoryview(data)[offset:end]) is key


def test_h264_keyframe_edge_cases() -> None:
    assert is_h264_keyframe(b"\x65") and is_h264_keyframe(b"\x67\x42")
    assert not is_h264_keyframe(b"") and not is_h264_keyframe(b"\x7c")  # FU-A without FU header
    assert not is_h264_keyframe(b"\x78\x00\x05\x67")  # STAP-A whose NAL size runs past the end
    assert is_h264_keyframe(b"\x78\x00\x01\x06\x00\x01\x65")  # SEI then IDR
    assert not is_h264_keyframe(b"\x78\x00\x00")  # zero-size NAL
