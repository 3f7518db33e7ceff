"""Join buffer: starts at the first packet of a key-frame access unit, keeps every stream after it."""

from __future__ import annotations

from pathlib import Path

from proxyd.rtp.packet import RtpPacket, rtp_header
from proxyd.split.gop import JoinBuffer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"


def packet(name: str, ts: int, seq: int) -> bytes:
    p = RtpPacket.parse((FIXTURES / name).read_bytes())
    return RtpPacket(p.payload_type, seq, ts, p.ssrc, p.payload, p.marker).to_bytes()


def feed_video(buf: JoinBuffer, data: bytes) -> None:
    _, _, _, ts, _, offset, end = rtp_header(data)
    buf.on_video(data, end, offset, ts)


def test_nothing_is_kept_before_the_first_key_frame():
    buf = JoinBuffer(2, 0, 1 << 20)
    feed_video(buf, packet("rtp_h264_non_idr.bin", 1000, 1))
    buf.on_other(1, b"\x80" * 40, 40)
    assert buf.snapshot(0) == [] and buf.snapshot(1) == [] and not buf.active


def test_key_frame_access_unit_starts_at_its_first_packet():
    buf = JoinBuffer(2, 0, 1 << 20)
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
    buf = JoinBuffer(2, 0, 1 << 20)
    feed_video(buf, packet("rtp_h264_fua_idr_start.bin", 1000, 1))
    buf.on_other(1, b"\x80" * 20, 20)
    second = packet("rtp_h264_fua_idr_start.bin", 91000, 30)
    feed_video(buf, second)
    assert buf.snapshot(0) == [second] and buf.snapshot(1) == []


def test_overflow_drops_the_buffer_until_the_next_key_frame():
    idr = packet("rtp_h264_fua_idr_start.bin", 1000, 1)
    buf = JoinBuffer(1, 0, len(idr) * 2)
    feed_video(buf, idr)
    for seq in range(2, 5):
        feed_video(buf, packet("rtp_h264_non_idr.bin", 1000 + seq, seq))
    assert not buf.active and buf.snapshot(0) == [] and buf.overflows == 1
    again = packet("rtp_h264_fua_idr_start.bin", 9000, 9)
    feed_video(buf, again)
    assert buf.active and buf.snapshot(0) == [again]
