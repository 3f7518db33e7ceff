"""Which RTP packets start a key frame (a point a decoder can start from), per payload format.

Shared by the cache (seek points of a recording) and the split (a late joiner's start). A test
takes an RTP packet `buf[:end]` (bytes, bytearray or memoryview; no copy) and answers whether a
key frame starts in it. Continuation packets of a key frame (H.264 FU-A middles, x-asf-pf fragments
past offset 0) are not starts: a player starting there would miss the frame's beginning.
"""

from __future__ import annotations

from collections.abc import Callable

from proxyd.rtp.packet import is_h264_keyframe

KeyTest = Callable[..., bool]  # (buf, end=None) -> bool

_ASF_S, _ASF_L = 0x80, 0x40
_FU_KEY_STARTS = (0x85, 0x87)  # FU header & 0x9F: start bit + IDR slice or SPS (is_h264_keyframe's types)


def payload_offset(buf, end: int) -> int:
    """Where the RTP payload of buf[:end] starts: after CSRCs and the header extension (may be
    past `end` for a truncated packet)."""
    offset = 12 + 4 * (buf[0] & 0x0F)
    if buf[0] & 0x10 and end >= offset + 4:
        offset += 4 + 4 * ((buf[offset + 2] << 8) | buf[offset + 3])
    return offset


def h264_key_start(buf, end: int | None = None) -> bool:
    """RFC 6184: the payload holds an SPS or IDR slice (single NAL, STAP-A, FU-A start)."""
    if end is None:
        end = len(buf)
    if end < 13:
        return False
    if not buf[0] & 0x1F:  # no CSRC, no extension: the payload is at 12
        if buf[12] & 0x1F == 28:  # FU-A, most packets of a large stream: decided by the FU header
            return end > 13 and buf[13] & 0x9F in _FU_KEY_STARTS
        return is_h264_keyframe(buf, 12, end)
    return is_h264_keyframe(buf, payload_offset(buf, end), end)


def asf_key_start(buf, end: int | None = None) -> bool:
    """[MS-RTSP] 2.2.1.2/2.2.1.3: the first payload header has S (key frame) set and carries a
    whole ASF packet (L) or the first fragment of one (offset 0)."""
    if end is None:
        end = len(buf)
    if end < 16:
        return False
    offset = payload_offset(buf, end)
    if end < offset + 4:
        return False
    flags = buf[offset]
    if not flags & _ASF_S:
        return False
    return bool(flags & _ASF_L) or (buf[offset + 1] | buf[offset + 2] | buf[offset + 3]) == 0


_TESTS: dict[str, KeyTest] = {"H264": h264_key_start, "X-ASF-PF": asf_key_start}


def key_start_test(encoding: str) -> KeyTest | None:
    """The test for an rtpmap encoding name; None when the format has no key frames we know of
    (every packet is then as good a start as any)."""
    return _TESTS.get(encoding.upper())
