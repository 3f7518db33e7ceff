"""A small, valid ASF file built in memory, deterministic from (seed, version).

Layout follows the ASF specification (Advanced Systems Format 1.2, sections 3 and 5):
Header Object [File Properties, Stream Properties x2, Stream Bitrate Properties, Header
Extension (empty, mandatory)], then the Data Object of fixed-size data packets (`maxps`
bytes each, single payload per packet, padding at the end). Media payloads are synthetic
bytes; only the container has to be right, because the proxy never decodes media.

`header` is the Header Object plus the 50-byte Data Object header: the "ASF file header"
that [MS-RTSP] 2.2.5.2.3.1 puts in `a=pgmpu` (and that ASF demuxers need to start reading).
A different seed, or a different version of the same seed, gives different bytes, file id
and packets ("content changed").
"""

from __future__ import annotations

import random
import struct
import uuid
from dataclasses import dataclass

from tests.wmorigin import guids

# Payload parsing information used for every packet we write (ASF 5.2.2):
# Length Type Flags 0x10 = single payload, no packet length, no sequence, padding length WORD.
# Property Flags 0x5D = replicated data length BYTE, offset DWORD, object number BYTE, stream BYTE.
_LENGTH_TYPE_FLAGS = 0x10
_PROPERTY_FLAGS = 0x5D
_ERROR_CORRECTION = b"\x82\x00\x00"  # EC present, 2 bytes of (opaque) EC data
_REPLICATED = 8  # media object size DWORD + presentation time DWORD
_PACKET_OVERHEAD = len(_ERROR_CORRECTION) + 2 + 2 + 4 + 2 + (1 + 1 + 4 + 1 + _REPLICATED)
_PREROLL_MS = 1000
_FILETIME_2026 = 134_116_704_000_000_000  # 2026-01-01 in 100 ns units since 1601


@dataclass(frozen=True)
class AsfStream:
    number: int
    kind: str  # "audio" | "video"
    bitrate: int  # bits per second (average)


@dataclass(frozen=True)
class AsfPacket:
    index: int
    data: bytes  # the complete maxps-byte data packet, padding included
    send_time: int  # ms
    duration: int  # ms
    stream: int
    key: bool


@dataclass(frozen=True)
class AsfFile:
    header: bytes  # Header Object + Data Object header (what a=pgmpu carries)
    packets: tuple[AsfPacket, ...]
    streams: tuple[AsfStream, ...]
    maxps: int
    duration_ms: int
    file_id: uuid.UUID

    @property
    def data(self) -> bytes:
        return self.header + b"".join(p.data for p in self.packets)

    @property
    def size(self) -> int:
        return len(self.header) + self.maxps * len(self.packets)

    def packets_for(self, stream: int) -> list[AsfPacket]:
        return [p for p in self.packets if p.stream == stream]

    def bitrate(self, stream: int) -> int:
        return next(s.bitrate for s in self.streams if s.number == stream)


def build_asf(seed: object, version: int = 1, *, duration_ms: int = 3000, maxps: int = 1400,
              audio_bitrate: int = 32_000, video_bitrate: int = 240_000, video_fps: int = 10,
              keyframe_interval_ms: int = 1000) -> AsfFile:
    """Build the file. Audio stream 1 (every payload a key frame), video stream 2 (key frame
    every `keyframe_interval_ms`; key frame objects are about three times larger)."""
    if maxps <= _PACKET_OVERHEAD + 16:
        raise ValueError(f"maxps must exceed {_PACKET_OVERHEAD + 16}")
    rng = random.Random(f"wmorigin:{seed}:{version}")
    file_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    streams = (AsfStream(1, "audio", audio_bitrate), AsfStream(2, "video", video_bitrate))
    objects = _media_objects(rng, duration_ms, audio_bitrate, video_bitrate, video_fps,
                             keyframe_interval_ms)
    packets = _packetize_objects(objects, maxps)
    header = _header(file_id, streams, packets, duration_ms, maxps, version)
    return AsfFile(header, tuple(packets), streams, maxps, duration_ms, file_id)


@dataclass(frozen=True)
class _MediaObject:
    stream: int
    number: int
    time: int
    duration: int
    key: bool
    data: bytes


def _media_objects(rng, duration_ms, audio_bitrate, video_bitrate, fps, key_every):
    objects = []
    audio_step = 100
    for n, t in enumerate(range(0, duration_ms, audio_step)):
        size = max(16, audio_bitrate * audio_step // 8000 + rng.randint(-40, 40))
        objects.append(_MediaObject(1, n % 256, t, audio_step, True, rng.randbytes(size)))
    video_step = 1000 // fps
    mean = video_bitrate // 8 // fps
    for n, t in enumerate(range(0, duration_ms, video_step)):
        key = t % key_every == 0
        size = max(32, (mean * 3 if key else mean * 3 // 4) + rng.randint(-mean // 5, mean // 5))
        objects.append(_MediaObject(2, n % 256, t, video_step, key, rng.randbytes(size)))
    objects.sort(key=lambda o: (o.time, o.stream))
    return objects


def _packetize_objects(objects, maxps) -> list[AsfPacket]:
    capacity = maxps - _PACKET_OVERHEAD
    packets: list[AsfPacket] = []
    for obj in objects:
        for offset in range(0, len(obj.data), capacity):
            chunk = obj.data[offset:offset + capacity]
            data = _data_packet(obj, offset, chunk, maxps - _PACKET_OVERHEAD - len(chunk))
            packets.append(AsfPacket(len(packets), data, obj.time, obj.duration, obj.stream, obj.key))
    return packets


def _data_packet(obj: _MediaObject, offset: int, chunk: bytes, padding: int) -> bytes:
    stream_byte = obj.stream | (0x80 if obj.key else 0)
    return b"".join((
        _ERROR_CORRECTION,
        struct.pack("<BBHIH", _LENGTH_TYPE_FLAGS, _PROPERTY_FLAGS, padding, obj.time, obj.duration),
        struct.pack("<BBIB", stream_byte, obj.number, offset, _REPLICATED),
        struct.pack("<II", len(obj.data), obj.time + _PREROLL_MS),
        chunk,
        bytes(padding),
    ))


def _obj(guid: uuid.UUID, body: bytes) -> bytes:
    return guid.bytes_le + struct.pack("<Q", 24 + len(body)) + body


def _header(file_id, streams, packets, duration_ms, maxps, version) -> bytes:
    total_bits = sum(s.bitrate for s in streams)
    play_100ns = (duration_ms + _PREROLL_MS) * 10_000

    def file_properties(size: int) -> bytes:
        return _obj(guids.FILE_PROPERTIES, file_id.bytes_le + struct.pack(
            "<QQQQQQIIII", size, _FILETIME_2026 + version * 10_000_000, len(packets),
            play_100ns, play_100ns, _PREROLL_MS, 0x02, maxps, maxps, total_bits))

    others = [_stream_properties(s) for s in streams]
    others.append(_obj(guids.STREAM_BITRATE_PROPERTIES, struct.pack("<H", len(streams)) + b"".join(
        struct.pack("<HI", s.number, s.bitrate) for s in streams)))
    others.append(_obj(guids.HEADER_EXTENSION, guids.RESERVED_1.bytes_le + struct.pack("<HI", 6, 0)))
    body_len = len(file_properties(0)) + sum(len(o) for o in others)
    header_len = 30 + body_len
    file_size = header_len + 50 + maxps * len(packets)
    header_obj = (guids.HEADER.bytes_le + struct.pack("<QIBB", header_len, 1 + len(others), 1, 2)
                  + file_properties(file_size) + b"".join(others))
    data_obj = guids.DATA.bytes_le + struct.pack("<Q", 50 + maxps * len(packets)) + file_id.bytes_le + \
        struct.pack("<QH", len(packets), 0x0101)
    return header_obj + data_obj


def _stream_properties(stream: AsfStream) -> bytes:
    if stream.kind == "audio":
        # WAVEFORMATEX, WMA v2 (0x0161), 22050 Hz mono; cbSize 10 + codec data.
        type_data = struct.pack("<HHIIHHH", 0x0161, 1, 22050, stream.bitrate // 8, 742, 16, 10) + bytes(10)
        kind, ec_guid, ec_data = guids.AUDIO_MEDIA, guids.NO_ERROR_CORRECTION, b""
    else:
        width, height = 320, 240
        bmi = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, int.from_bytes(b"WMV2", "little"),
                          0, 0, 0, 0, 0)
        type_data = struct.pack("<IIBH", width, height, 2, len(bmi)) + bmi
        kind, ec_guid, ec_data = guids.VIDEO_MEDIA, guids.NO_ERROR_CORRECTION, b""
    body = (kind.bytes_le + ec_guid.bytes_le + struct.pack("<QIIHI", 0, len(type_data), len(ec_data),
                                                           stream.number, 0) + type_data + ec_data)
    return _obj(guids.STREAM_PROPERTIES, body)
