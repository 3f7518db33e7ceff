"""RTCP (RFC 3550 §6.4-6.6) compound parsing and SR/RR/SDES/BYE building, byte-exact round trip."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import PacketError

RTCP_HEADER = struct.Struct("!BBH")  # v/p/count, pt, length in 32-bit words minus one
REPORT_BLOCK = struct.Struct("!IB3sIIII")

RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP = 200, 201, 202, 203, 204
SDES_CNAME = 1



@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp
    dlsr: int  # delay since last SR, 1/65536 s

    def to_bytes(self) -> bytes:
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise PacketError(f"cumulative_lost {self.cumulative_lost} does not fit 24 bits")
        lost = self.cumulative_lost.to_bytes(3, "big", signed=True)
        return REPORT_BLOCK.pack(self.ssrc, self.fraction_lost, lost, self.highest_seq, self.jitter,
                                 self.lsr, self.dlsr)

    @classmethod
    def parse(cls, buf, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = REPORT_BLOCK.unpack_from(buf, offset)
        return cls(ssrc, fraction, int.from_bytes(lost, "big", signed=True), highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp_seconds: int
    ntp_fraction: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific extension
    padding: bytes = b""

    @property
    def lsr(self) -> int:
        """The value a receiver echoes as LSR: middle 32 bits of the NTP timestamp."""
        return ((self.ntp_seconds & 0xFFFF) << 16) | (self.ntp_fraction >> 16)

    def to_bytes(self) -> bytes:
        body = struct.pack("!IIIIII", self.ssrc, self.ntp_seconds, self.ntp_fraction, self.rtp_timestamp,
                           self.packet_count, self.octet_count)
        body += b"".join(r.to_bytes() for r in self.reports) + self.extension
        return _rtcp_packet(RTCP_SR, len(self.reports), body, self.padding)


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    def to_bytes(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.to_bytes() for r in self.reports) + self.extension
        return _rtcp_packet(RTCP_RR, len(self.reports), body, self.padding)


@dataclass(frozen=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...]  # (item type, value); CNAME is type 1

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]
    padding: bytes = b""

    def to_bytes(self) -> bytes:
        body = bytearray()
        for chunk in self.chunks:
            body += struct.pack("!I", chunk.ssrc)
            for kind, value in chunk.items:
                if len(value) > 255:
                    raise PacketError("SDES item longer than 255 bytes")
                body += bytes((kind, len(value))) + value
            body += b"\x00" * (4 - len(body) % 4)  # end marker + pad to 32 bits (1-4 nulls)
        return _rtcp_packet(RTCP_SDES, len(self.chunks), bytes(body), self.padding)


@dataclass(frozen=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: bytes | None = None
    padding: bytes = b""

    def to_bytes(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.ssrcs)
        if self.reason is not None:
            if len(self.reason) > 255:
                raise PacketError("BYE reason longer than 255 bytes")
            text = bytes((len(self.reason),)) + self.reason
            body += text + b"\x00" * (-len(text) % 4)
        return _rtcp_packet(RTCP_BYE, len(self.ssrcs), body, self.padding)


@dataclass(frozen=True)
class RtcpOther:
    """A packet type we pass through untouched (APP, XR, feedback...)."""

    packet_type: int
    count: int
    body: bytes
    padding: bytes = b""

    def to_bytes(self) -> bytes:
        return _rtcp_packet(self.packet_type, self.count, self.body, self.padding)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpOther


def _rtcp_packet(packet_type: int, count: int, body: bytes, padding: bytes) -> bytes:
    if count > 31:
        raise PacketError(f"RTCP count {count} does not fit 5 bits")
    total = 4 + len(body) + len(padding)
    if total % 4:
        raise PacketError(f"RTCP packet length {total} is not a multiple of 4")
    b0 = 0x80 | (0x20 if padding else 0) | count
    return RTCP_HEADER.pack(b0, packet_type, total // 4 - 1) + body + padding


def parse_rtcp(buf) -> list[RtcpPacket]:
    """Parse a compound RTCP packet into its parts, in order."""
    packets: list[RtcpPacket] = []
    pos, size = 0, len(buf)
    if size == 0:
        raise PacketError("RTCP packet truncated: 0 bytes, header needs 4")
    while pos < size:
        if size - pos < 4:
            raise PacketError(f"RTCP packet truncated: {size - pos} bytes, header needs 4")
        b0, packet_type, words = RTCP_HEADER.unpack_from(buf, pos)
        if b0 >> 6 != 2:
            raise PacketError(f"bad RTCP version {b0 >> 6} (expected 2)")
        total = 4 * (words + 1)
        if pos + total > size:
            raise PacketError(f"RTCP packet truncated: {size - pos} bytes, length field says {total}")
        body = bytes(buf[pos + 4 : pos + total])
        padding = b""
        if b0 & 0x20:
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise PacketError(f"bad RTCP padding length {pad} for a {len(body)}-byte body")
            body, padding = body[:-pad], body[-pad:]
        packets.append(_parse_rtcp_body(packet_type, b0 & 0x1F, body, padding))
        pos += total
    return packets


def first_report_block(buf) -> ReportBlock | None:
    """The first reception report block of a compound packet's SR or RR (a player's receiver
    report), or None when there is none or the packet is malformed. The one receiver-report reader."""
    try:
        packets = parse_rtcp(buf)
    except PacketError:
        return None
    for packet in packets:
        if isinstance(packet, ReceiverReport | SenderReport) and packet.reports:
            return packet.reports[0]
    return None


def _parse_reports(body: bytes, offset: int, count: int, what: str) -> tuple[tuple[ReportBlock, ...], bytes]:
    need = offset + 24 * count
    if len(body) < need:
        raise PacketError(
            f"RTCP {what} truncated: {len(body) + 4} bytes, {count} report blocks need {need + 4}"
        )
    blocks = tuple(ReportBlock.parse(body, offset + 24 * i) for i in range(count))
    return blocks, body[need:]


def _parse_rtcp_body(packet_type: int, count: int, body: bytes, padding: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < 24:
            raise PacketError(f"RTCP SR truncated: {len(body) + 4} bytes, sender info needs 28")
        fields = struct.unpack_from("!IIIIII", body, 0)
        reports, extension = _parse_reports(body, 24, count, "SR")
        return SenderReport(*fields, reports=reports, extension=extension, padding=padding)
    if packet_type == RTCP_RR:
        if len(body) < 4:
            raise PacketError(f"RTCP RR truncated: {len(body) + 4} bytes, needs 8")
        reports, extension = _parse_reports(body, 4, count, "RR")
        return ReceiverReport(struct.unpack_from("!I", body, 0)[0], reports, extension, padding)
    if packet_type == RTCP_SDES:
        return SourceDescription(_parse_sdes_chunks(body, count), padding)
    if packet_type == RTCP_BYE:
        if len(body) < 4 * count:
            raise PacketError(
                f"RTCP BYE truncated: {len(body) + 4} bytes, {count} SSRCs need {4 * count + 4}"
            )
        ssrcs = struct.unpack_from(f"!{count}I", body, 0)
        reason = None
        if len(body) > 4 * count:
            length = body[4 * count]
            if 4 * count + 1 + length > len(body):
                raise PacketError("RTCP BYE reason runs past the packet")
            reason = body[4 * count + 1 : 4 * count + 1 + length]
        return Bye(tuple(ssrcs), reason, padding)
    return RtcpOther(packet_type, count, body, padding)


def _parse_sdes_chunks(body: bytes, count: int) -> tuple[SdesChunk, ...]:
    chunks = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise PacketError("RTCP SDES truncated: chunk without SSRC")
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise PacketError("RTCP SDES truncated: chunk without end marker")
            kind = body[pos]
            if kind == 0:
                pos = (pos + 4) & ~3  # skip the end marker and pad to the next 32-bit boundary
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise PacketError("RTCP SDES truncated: item runs past the packet")
            length = body[pos + 1]
            items.append((kind, body[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return tuple(chunks)


def build_sr(ssrc: int, ntp_seconds: int, ntp_fraction: int, rtp_timestamp: int, packet_count: int,
             octet_count: int, reports: tuple[ReportBlock, ...] = ()) -> bytes:
    return SenderReport(ssrc, ntp_seconds, ntp_fraction, rtp_timestamp, packet_count, octet_count,
                        tuple(reports)).to_bytes()


def build_rr(ssrc: int, reports: tuple[ReportBlock, ...] = ()) -> bytes:
    return ReceiverReport(ssrc, tuple(reports)).to_bytes()


def build_bye(ssrcs: tuple[int, ...], reason: bytes | None = None) -> bytes:
    return Bye(tuple(ssrcs), reason).to_bytes()


def build_sdes_cname(ssrc: int, cname: str) -> bytes:
    return SourceDescription((SdesChunk(ssrc, ((SDES_CNAME, cname.encode("utf-8")),)),)).to_bytes()
