"""RTP (RFC 3550 §5.1) and RTCP (§6.4–6.6) parsing, in-place rewriting and building.

Hot-path helpers (`rtp_header`, `rewrite_rtp_header`, `is_h264_keyframe`) work on bytes,
bytearray or memoryview without copying the payload. `RtpPacket`/RTCP classes are for tests,
cache files and control-rate traffic; they re-encode byte-exactly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import PacketError
from .rtcp import (  # noqa: F401 - re-exported: packet.py is the public RTP/RTCP module
    RTCP_BYE,
    RTCP_RR,
    RTCP_SDES,
    RTCP_SR,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpOther,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    build_bye,
    build_rr,
    build_sdes_cname,
    build_sr,
    first_report_block,
    parse_rtcp,
)

RTP_HEADER = struct.Struct("!BBHII")  # v/p/x/cc, m/pt, seq, timestamp, ssrc
SEQ_TS_SSRC = struct.Struct("!HII")




# ---- RTP ------------------------------------------------------------------------------------


def rtp_header(buf) -> tuple[int, int, int, int, int, int, int]:
    """(marker, payload_type, seq, timestamp, ssrc, payload_offset, payload_end) of an RTP packet.

    payload_offset skips CSRCs and the header extension; payload_end excludes padding.
    """
    size = len(buf)
    if size < 12:
        raise PacketError(f"RTP packet truncated: {size} bytes, fixed header needs 12")
    b0, b1, seq, timestamp, ssrc = RTP_HEADER.unpack_from(buf, 0)
    if b0 >> 6 != 2:
        raise PacketError(f"bad RTP version {b0 >> 6} (expected 2)")
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if size < offset + 4:
            raise PacketError(f"RTP packet truncated: {size} bytes, header extension needs {offset + 4}")
        words = (buf[offset + 2] << 8) | buf[offset + 3]
        offset += 4 + 4 * words
    if size < offset:
        raise PacketError(f"RTP packet truncated: {size} bytes, header needs {offset}")
    end = size
    if b0 & 0x20:
        pad = buf[size - 1]
        if pad == 0 or offset + pad > size:
            raise PacketError(f"bad RTP padding length {pad} for {size - offset} bytes after the header")
        end -= pad
    return b1 >> 7, b1 & 0x7F, seq, timestamp, ssrc, offset, end


def rewrite_rtp_header(buf: bytearray, seq: int, timestamp: int, ssrc: int) -> None:
    """Overwrite sequence number, timestamp and SSRC in place (no allocation)."""
    SEQ_TS_SSRC.pack_into(buf, 2, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""  # extension data, a multiple of 4 bytes
    padding: bytes = b""  # the padding bytes as sent, including the count byte

    @classmethod
    def parse(cls, buf) -> RtpPacket:
        marker, pt, seq, ts, ssrc, offset, end = rtp_header(buf)
        cc = buf[0] & 0x0F
        csrcs = struct.unpack_from(f"!{cc}I", buf, 12) if cc else ()
        profile = None
        extension = b""
        if buf[0] & 0x10:
            ext_at = 12 + 4 * cc
            profile = (buf[ext_at] << 8) | buf[ext_at + 1]
            extension = bytes(buf[ext_at + 4 : offset])
        return cls(pt, seq, ts, ssrc, bytes(buf[offset:end]), bool(marker), tuple(csrcs), profile,
                   extension, bytes(buf[end:]))

    def to_bytes(self) -> bytes:
        if len(self.csrcs) > 15 or len(self.extension) % 4 or len(self.extension) > 0x3FFFC:
            raise PacketError("cannot encode: more than 15 CSRCs or a misaligned extension")
        if self.padding and self.padding[-1] != len(self.padding):
            raise PacketError("cannot encode: padding count byte does not match the padding length")
        b0 = 0x80 | (0x20 if self.padding else 0) | (0x10 if self.extension_profile is not None else 0)
        b0 |= len(self.csrcs)
        out = bytearray(RTP_HEADER.pack(b0, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                                         self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                                         self.ssrc & 0xFFFFFFFF))
        for csrc in self.csrcs:
            out += struct.pack("!I", csrc)
        if self.extension_profile is not None:
            out += struct.pack("!HH", self.extension_profile, len(self.extension) // 4) + self.extension
        return bytes(out + self.payload + self.padding)


# ---- sequence / timestamp arithmetic --------------------------------------------------------


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b on the 16-bit sequence circle, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number a comes after b (RFC 1982 serial arithmetic)."""
    return seq_diff(a, b) > 0


def seq_add(seq: int, n: int) -> int:
    return (seq + n) & 0xFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance a - b on the 32-bit RTP timestamp circle."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def ts_add(ts: int, n: int) -> int:
    return (ts + n) & 0xFFFFFFFF


# ---- H.264 (RFC 6184) -----------------------------------------------------------------------

_KEY_NAL_TYPES = (5, 7)  # IDR slice, SPS (an SPS starts a decodable GOP)


def is_h264_keyframe(buf, offset: int = 0, end: int | None = None) -> bool:
    """Whether the RTP payload buf[offset:end] starts or contains an IDR slice or SPS.

    Single NAL units, STAP-A (24) aggregates and FU-A (28) start fragments are inspected.
    """
    if end is None:
        end = len(buf)
    if end - offset < 1:
        return False
    nal_type = buf[offset] & 0x1F
    if nal_type in _KEY_NAL_TYPES:
        return True
    if nal_type == 28:  # FU-A: FU indicator, FU header (S bit + original type)
        if end - offset < 2:
            return False
        fu_header = buf[offset + 1]
        return bool(fu_header & 0x80) and (fu_header & 0x1F) in _KEY_NAL_TYPES
    if nal_type == 24:  # STAP-A: (16-bit size, NAL unit)*
        pos = offset + 1
        while pos + 2 < end:
            size = (buf[pos] << 8) | buf[pos + 1]
            if size == 0 or pos + 2 + size > end:
                return False
            if buf[pos + 2] & 0x1F in _KEY_NAL_TYPES:
                return True
            pos += 2 + size
    return False
