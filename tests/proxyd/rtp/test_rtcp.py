"""RTCP compound parsing and SR/RR/SDES/BYE building with exact round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyd.rtp.packet import (
    Bye,
    PacketError,
    ReceiverReport,
    ReportBlock,
    RtcpOther,
    SenderReport,
    SourceDescription,
    build_bye,
    build_rr,
    build_sdes_cname,
    build_sr,
    parse_rtcp,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize("name", ["rtcp_sr_sdes.bin", "rtcp_rr_sdes_bye.bin"])
def test_compound_reencodes_byte_exactly(name: str) -> None:
    data = load(name)
    assert b"".join(p.to_bytes() for p in parse_rtcp(data)) == data


def test_sender_report_fields() -> None:
    sr, sdes = parse_rtcp(load("rtcp_sr_sdes.bin"))
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert (sr.ssrc, sr.ntp_seconds, sr.ntp_fraction, sr.rtp_timestamp) == (0x6A5E4C3B, 3973236000, 1 << 31, 3422541851)
    assert (sr.packet_count, sr.octet_count) == (1500, 1843211)
    (block,) = sr.reports
    assert (block.ssrc, block.fraction_lost, block.cumulative_lost, block.highest_seq) == (0xC0FFEE01, 12, 37, 0x17158)
    assert (block.jitter, block.lsr, block.dlsr) == (45, 0xD8E6A3F0, 0x24000)
    assert sr.lsr == ((3973236000 & 0xFFFF) << 16) | 0x8000
    assert sdes.chunks[0].cname == "user3104@host-6d1e"


def test_receiver_report_sdes_bye() -> None:
    rr, sdes, bye = parse_rtcp(load("rtcp_rr_sdes_bye.bin"))
    assert isinstance(rr, ReceiverReport) and rr.ssrc == 0xC0FFEE01
    assert [(b.fraction_lost, b.cumulative_lost, b.highest_seq, b.jitter) for b in rr.reports] == [
        (3, 5, 0x1FFFF, 88), (0, -2, 0x6E4, 10)]
    assert sdes.chunks[0].cname == "proxyd@node-1"
    assert isinstance(bye, Bye) and bye.ssrcs == (0xC0FFEE01,) and bye.reason == b"teardown"


def test_builders_round_trip() -> None:
    block = ReportBlock(0x1234, 25, -3, 70000, 12, 0xAABBCCDD, 65536)
    compound = (build_sr(1, 3973236000, 123456, 1000, 10, 1200, (block,)) + build_rr(2, (block, block))
                + build_sdes_cname(1, "proxyd@node-1") + build_bye((1, 2), b"shutdown") + build_bye((3,)))
    packets = parse_rtcp(compound)
    assert [type(p) for p in packets] == [SenderReport, ReceiverReport, SourceDescription, Bye, Bye]
    assert packets[0].reports == (block,) and packets[1].reports == (block, block)
    assert packets[3].reason == b"shutdown" and packets[4].reason is None
    assert b"".join(p.to_bytes() for p in packets) == compound
    assert len(build_rr(2)) == 8 and len(build_bye((1,))) == 8


def test_unknown_types_and_padding_pass_through() -> None:
    app = RtcpOther(204, 1, b"\x00\x00\x00\x01name" + b"data", b"\x00\x00\x00\x04")
    data = build_rr(9) + app.to_bytes()
    parsed = parse_rtcp(data)
    assert parsed[1] == app and b"".join(p.to_bytes() for p in parsed) == data


@pytest.mark.parametrize(("data", "message"), [
    (load("rtcp_truncated.bin"), "RTCP packet truncated: 40 bytes, length field says 56"),
    (load("rtcp_bad_version.bin"), "bad RTCP version 1 (expected 2)"),
    (b"", "RTCP packet truncated: 0 bytes, header needs 4"),
    (build_rr(1) + b"\x80\xc9", "RTCP packet truncated: 2 bytes, header needs 4"),
    (b"\x81\xc8\x00\x01" + bytes(4), "RTCP SR truncated: 8 bytes, sender info needs 28"),
    (b"\x81\xc9\x00\x01" + bytes(4), "RTCP RR truncated: 8 bytes, 1 report blocks need 32"),
    (b"\x81\xca\x00\x01" + bytes(4), "RTCP SDES truncated: chunk without end marker"),
    (b"\x82\xcb\x00\x01" + bytes(4), "RTCP BYE truncated: 8 bytes, 2 SSRCs need 12"),
    (b"\x81\xcb\x00\x02" + bytes(4) + b"\x09abc", "RTCP BYE reason runs past the packet"),
    (b"\xa0\xc9\x00\x01" + b"\x00\x00\x00\x09", "bad RTCP padding length 9 for a 4-byte body"),
])
def test_bad_rtcp_raises_exact_errors(data: bytes, message: str) -> None:
    with pytest.raises(PacketError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


def test_builder_limits() -> None:
    with pytest.raises(PacketError):
        ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0).to_bytes()
    with pytest.raises(PacketError):
        build_bye(tuple(range(32)))
