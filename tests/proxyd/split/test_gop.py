"""Join buffer: starts at the first packet of a key frame (H.264 access unit, x-asf-pf key ASF
packet), keeps every stream after it."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

from proxyd.rtp.keyframe import asf_key_start, h264_key_start
from proxyd.rtp.packet import RtpPacket
from proxyd.split.gop import JoinBuffer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"


def packet(name: str, ts: int, seq: int) -> bytes:
    p = RtpPacket.parse((FIXTURES / name).read_bytes())
    return RtpPacket(p.payload_type, seq, ts, p.ssrc, p.payload, p.marker).to_bytes()


def feed_video(buf: JoinBuffer, data: bytes) -> None:
    """As HubStream does: the packet in place at the start of a larger receive buffer."""
    view = memoryview(bytearray(data) + bytes(64))
    buf.on_video(view, len(data), struct.unpack_from("!I", data, 4)[0])


def h264_buffer(streams: int, max_bytes: int = 1 << 20) -> JoinBuffer:
    return JoinBuffer(streams, 0, max_bytes, h264_key_start)


def test_nothing_is_kept_before_the_first_key_frame():
    buf = h264_buffer(2)
    feed_video(buf, packet("rtp_h264_non_idr.bin", 1000, 1))
    buf.on_other(1, b"\x80" * 40, 40)
    assert buf.snapshot(0) == [] and buf.snapshot(1) == [] and not buf.active


def test_key_frame_access_unit_starts_at_its_first_packet():
    buf = h264_buffer(2)
    keys = []
    buf.on_key = lambda: keys.append(True)
    feed_video(buf, packet("rtp_h264_non_idr.bin", 1000, 1))
    sps = packet("rtp_h264_stapa_sps_pps.bin", 4000, 2)
    idr_start = packet("rtp_h264_fua_idr_start.bin", 4000, 3)  # same AU: must not restart
    idr_mid = packet("rtp_h264_fua_idr_middle.bin", 4000, 4)
    for p in (sps, idr_start, idr_mid):
        feed_video(buf, p)
    audio = b"\x80\x61" + b"\x00" * 30
    buf.on_other(1, audio, len(audio))
    following = packet("rtp_h264_non_idr.bin", 7600, 5)
    feed_video(buf, following)
    assert buf.snapshot(0) == [sps, idr_start, idr_mid, following]
    assert buf.snapshot(1) == [audio]
    assert keys == [True]


def test_next_key_frame_restarts_every_stream():
    buf = h264_buffer(2)
    feed_video(buf, packet("rtp_h264_fua_idr_start.bin", 1000, 1))
    buf.on_other(1, b"\x80" * 20, 20)
    second = packet("rtp_h264_fua_idr_start.bin", 91000, 30)
    feed_video(buf, second)
    assert buf.snapshot(0) == [second] and buf.snapshot(1) == []


def test_overflow_drops_the_buffer_until_the_next_key_frame():
    idr = packet("rtp_h264_fua_idr_start.bin", 1000, 1)
    buf = h264_buffer(1, len(idr) * 2)
    feed_video(buf, idr)
    for seq in range(2, 5):
        feed_video(buf, packet("rtp_h264_non_idr.bin", 1000 + seq, seq))
    assert not buf.active and buf.snapshot(0) == [] and buf.overflows == 1
    again = packet("rtp_h264_fua_idr_start.bin", 9000, 9)
    feed_video(buf, again)
    assert buf.active and buf.snapshot(0) == [again]


def test_a_gop_larger_than_the_first_index_grows_it_and_keeps_every_packet():
    buf = h264_buffer(1, 1 << 22)
    packets = [packet("rtp_h264_fua_idr_start.bin", 1000, 0)]
    packets += [packet("rtp_h264_non_idr.bin", 1000 + 3600 * (seq // 8), seq) for seq in range(1, 5000)]
    for p in packets:
        feed_video(buf, p)
    assert buf.snapshot(0) == packets


def test_keeping_packets_holds_no_python_object_per_packet():
    """The join buffer of a live split sees every packet: a GOP of 2000 packets kept must not leave
    a Python object (a bytes copy, a list slot) per packet behind. Counted in bytes the Python
    allocators hold (tracemalloc), so a copy per packet coming back fails this whatever the
    machine's speed."""
    buf = h264_buffer(2, 1 << 22)
    key = packet("rtp_h264_fua_idr_start.bin", 1000, 1)
    video = packet("rtp_h264_non_idr.bin", 4600, 2)
    audio = b"\x80\x61" + b"\x00" * 300
    key_view, video_view = memoryview(bytearray(key)), memoryview(bytearray(video))
    buf.on_video(key_view, len(key), 1000)
    for _ in range(100):  # warm up: anything allocated once (not per packet) is allocated now
        buf.on_video(video_view, len(video), 4600)
        buf.on_other(1, audio, len(audio))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            buf.on_video(video_view, len(video), 4600)
            buf.on_other(1, audio, len(audio))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16384, f"{grown} bytes kept by Python objects for 2000 packets"
    assert buf.active and buf.snapshot(0) == [key] + [video] * 1100 and buf.snapshot(1) == [audio] * 1100


# --- x-asf-pf ([MS-RTSP] 2.2.1): the video m= line's packets; S marks key ASF packets ----------
S, L = 0x80, 0x40


def asf(ts: int, seq: int, flags: int, value: int, body: bytes = b"\x00" * 100) -> bytes:
    """An x-asf-pf RTP packet with one payload header (Length when L is set, else Offset)."""
    return struct.pack("!BBHIII", 0x80, 96, seq, ts, 0xA5F, (flags << 24) | value) + body


def asf_buffer(max_bytes: int = 1 << 20) -> JoinBuffer:
    return JoinBuffer(3, 1, max_bytes, asf_key_start)  # audio 0, video 1, rtx 2


def test_asf_key_frame_starts_at_its_first_fragment_and_keeps_its_other_packets():
    buf = asf_buffer()
    keys = []
    buf.on_key = lambda: keys.append(True)
    before = [asf(900, 1, 0, 0), asf(900, 2, 0, 1196), asf(1000, 3, L, 100)]
    for p in before:
        feed_video(buf, p)
    buf.on_other(0, asf(950, 40, S | L, 100), 116)
    assert not buf.active and buf.snapshot(0) == [] and buf.snapshot(1) == []
    # A key ASF packet in two fragments, a second key ASF packet (same send time), then a delta frame.
    frame = [asf(1100, 4, S, 0), asf(1100, 5, S, 1196), asf(1100, 6, S, 0), asf(1100, 7, S, 1196),
             asf(1100, 8, S | L, 100)]
    for p in frame:
        feed_video(buf, p)
    audio = asf(1100, 41, S | L, 100)
    buf.on_other(0, audio, len(audio))
    delta = asf(1200, 9, L, 100)
    feed_video(buf, delta)
    assert buf.snapshot(1) == [*frame, delta] and buf.snapshot(0) == [audio] and buf.snapshot(2) == []
    assert keys == [True]


def test_asf_continuation_fragment_of_a_key_packet_does_not_start_a_buffer():
    buf = asf_buffer()
    feed_video(buf, asf(1100, 5, S, 1196))  # joined mid-frame: the frame's start was before us
    assert not buf.active
    start = asf(2100, 6, S, 0)
    feed_video(buf, start)
    assert buf.active and buf.snapshot(1) == [start]


def test_asf_next_key_frame_restarts_every_stream():
    buf = asf_buffer()
    feed_video(buf, asf(1000, 1, S | L, 100))
    buf.on_other(0, asf(1000, 30, S | L, 100), 116)
    second = asf(2000, 11, S, 0)
    feed_video(buf, second)
    assert buf.snapshot(1) == [second] and buf.snapshot(0) == []


def test_asf_overflow_drops_the_buffer_until_the_next_key_frame():
    key = asf(1000, 1, S | L, 100)
    buf = asf_buffer(len(key) * 2)
    for seq in range(1, 5):
        feed_video(buf, asf(1000 + 100 * seq, seq + 1, L, 100))
    assert buf.overflows == 0
    feed_video(buf, key)
    for seq in range(2, 5):
        feed_video(buf, asf(1000 + 100 * seq, seq + 10, L, 100))
    assert not buf.active and buf.snapshot(1) == [] and buf.overflows == 1
