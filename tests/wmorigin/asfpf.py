"""x-asf-pf: the RTP payload format for ASF data packets ([MS-RTSP] 2.2.1).

Sender side: `strip_padding` (2.2.1.4: padding SHOULD be removed and Padding Length set to 0)
and `payloads` (2.2.1.2/2.2.1.3: one 4-byte header `S L R D I RES Length/Offset` in front of
each ASF packet or fragment; whole packets are combined while they fit, larger ones are
fragmented with L=0 and a byte offset; M=1 on the RTP packet that ends an ASF packet; the RTP
timestamp is the Send Time of the first ASF packet, and Relative Timestamp (R) is present when
a combined packet's Send Time differs).
Receiver side: `Depacketizer` reassembles packets and `restore_padding` pads them back to
`maxps`, which gives the original file's packets byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_S, _L, _R, _D, _I = 0x80, 0x40, 0x20, 0x10, 0x08
_LEN_SIZES = (0, 1, 2, 4)


class AsfPacketError(ValueError):
    """The bytes are not an ASF data packet we can parse."""


@dataclass(frozen=True)
class PacketInfo:
    padding_offset: int  # where the Padding Length field starts (0 if absent)
    padding_size: int  # size of that field in bytes
    padding_length: int
    send_time: int
    duration: int
    stream: int
    key: bool
    object_offset: int  # offset into the media object of the (first) payload: 0 starts a frame


def packet_info(packet: bytes) -> PacketInfo:
    """Parse the error correction data and payload parsing information (ASF 5.2.1, 5.2.2)."""
    try:
        pos = 0
        if packet[0] & 0x80:
            pos = 1 + (packet[0] & 0x0F)
        flags, properties = packet[pos], packet[pos + 1]
        pos += 2
        pos += _LEN_SIZES[(flags >> 5) & 3]  # packet length
        pos += _LEN_SIZES[(flags >> 1) & 3]  # sequence
        pad_size = _LEN_SIZES[(flags >> 3) & 3]
        pad_offset = pos if pad_size else 0
        padding = int.from_bytes(packet[pos:pos + pad_size], "little")
        pos += pad_size
        send_time, duration = struct.unpack_from("<IH", packet, pos)
        pos += 6
        if flags & 0x01:  # multiple payloads: skip the payload flags byte
            pos += 1
        stream_byte = packet[pos]
        pos += _LEN_SIZES[(properties >> 6) & 3]  # stream number
        pos += _LEN_SIZES[(properties >> 4) & 3]  # media object number
        offset_size = _LEN_SIZES[(properties >> 2) & 3]
        if pos + offset_size > len(packet):
            raise IndexError(pos)
        object_offset = int.from_bytes(packet[pos:pos + offset_size], "little")
    except (IndexError, struct.error) as exc:
        raise AsfPacketError(f"truncated ASF data packet ({len(packet)} bytes)") from exc
    return PacketInfo(pad_offset, pad_size, padding, send_time, duration, stream_byte & 0x7F,
                      bool(stream_byte & 0x80), object_offset)


def strip_padding(packet: bytes) -> bytes:
    info = packet_info(packet)
    if not info.padding_length:
        return packet
    out = bytearray(packet[:len(packet) - info.padding_length])
    out[info.padding_offset:info.padding_offset + info.padding_size] = bytes(info.padding_size)
    return bytes(out)


def restore_padding(packet: bytes, maxps: int) -> bytes:
    """Inverse of strip_padding for fixed-size files (padding bytes are zero)."""
    info = packet_info(packet)
    missing = maxps - len(packet)
    if missing <= 0:
        return packet
    if not info.padding_size:
        raise AsfPacketError("packet has no Padding Length field to restore")
    out = bytearray(packet)
    out[info.padding_offset:info.padding_offset + info.padding_size] = \
        (info.padding_length + missing).to_bytes(info.padding_size, "little")
    return bytes(out) + bytes(missing)


@dataclass(frozen=True)
class RtpPayload:
    timestamp: int  # ms (1000 Hz clock)
    marker: bool
    key: bool
    data: bytes
    first_packet: int  # index (in the input sequence) of the first ASF packet it carries


def payloads(packets: list[tuple[bytes, int, bool]], max_payload: int = 1200) -> list[RtpPayload]:
    """Packetize (stripped ASF packet, send time ms, key) tuples into x-asf-pf payloads."""
    out: list[RtpPayload] = []
    pending: list[bytes] = []
    pending_ts = 0
    pending_key = False
    pending_first = 0
    for index, (data, send_time, key) in enumerate(packets):
        whole_len = 4 + len(data)
        rel = send_time != pending_ts and bool(pending)
        need = whole_len + (4 if rel else 0)
        if pending and sum(map(len, pending)) + need > max_payload:
            out.append(RtpPayload(pending_ts, True, pending_key, b"".join(pending), pending_first))
            pending = []
            rel = False
        if whole_len <= max_payload:
            if not pending:
                pending_ts, pending_key, pending_first = send_time, key, index
            flags = (_S if key else 0) | _L | (_R if rel else 0)
            head = struct.pack(">I", (flags << 24) | len(data))
            if rel:
                head += struct.pack(">i", send_time - pending_ts)
            pending.append(head + data)
            pending_key = pending_key or key
            continue
        chunk = max_payload - 4
        for offset in range(0, len(data), chunk):
            piece = data[offset:offset + chunk]
            head = struct.pack(">I", (((_S if key else 0)) << 24) | offset)
            last = offset + chunk >= len(data)
            out.append(RtpPayload(send_time, last, key, head + piece, index))
    if pending:
        out.append(RtpPayload(pending_ts, True, pending_key, b"".join(pending), pending_first))
    return out


class Depacketizer:
    """Reassembles ASF data packets from x-asf-pf RTP payloads of one RTP stream.

    A fragment whose offset does not continue the packet being assembled (a lost RTP packet)
    discards that packet and is counted in `broken`."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._partial_ts = 0
        self._discarding = False  # after a gap, until the next fragment at offset 0
        self.broken = 0
        self.key_flags = 0

    def feed(self, payload: bytes, timestamp: int, marker: bool) -> list[tuple[int, bytes]]:
        done: list[tuple[int, bytes]] = []
        pos = 0
        while pos + 4 <= len(payload):
            word = struct.unpack_from(">I", payload, pos)[0]
            flags, value = word >> 24, word & 0xFFFFFF
            pos += 4
            rel = 0
            if flags & _R:
                rel = struct.unpack_from(">i", payload, pos)[0]
                pos += 4
            pos += 4 * bool(flags & _D) + 4 * bool(flags & _I)
            if flags & _S:
                self.key_flags += 1
            if flags & _L:
                done.append(((timestamp + rel) & 0xFFFFFFFF, bytes(payload[pos:pos + value])))
                pos += value
                continue
            # Fragment: runs to the end of the RTP payload (2.2.1.3).
            if value == 0:
                if self._partial:
                    self.broken += 1
                self._partial = bytearray(payload[pos:])
                self._partial_ts = timestamp + rel
                self._discarding = False
            elif value == len(self._partial) and self._partial:
                self._partial += payload[pos:]
            else:
                if not self._discarding:
                    self.broken += 1
                self._discarding = True
                self._partial = bytearray()
                return done
            if marker:
                done.append((self._partial_ts & 0xFFFFFFFF, bytes(self._partial)))
                self._partial = bytearray()
            return done
        return done
