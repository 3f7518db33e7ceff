"""Join buffer: the packets of every stream since the latest key frame of the key stream (H.264 or
x-asf-pf video), so a late joiner starts with a decodable picture at once (its RTP-Info names the
first buffered packet).

The buffer restarts at a packet where a key frame starts (proxyd.rtp.keyframe) with a new RTP
timestamp: the other packets of that frame (same timestamp: the rest of an access unit, further
ASF packets of the key frame) and continuation fragments never restart it mid-frame. It is dropped
when it grows past its byte limit, until the next key frame.
"""

from __future__ import annotations

from proxyd.rtp.keyframe import KeyTest


class JoinBuffer:
    def __init__(self, stream_count: int, video_index: int | None, max_bytes: int,
                 key_test: KeyTest | None = None) -> None:
        self.video_index = video_index  # the key stream; None: no join buffer (start at the live point)
        self.key_test = key_test
        self.max_bytes = max_bytes
        self.packets: list[list[bytes]] = [[] for _ in range(stream_count)]
        self.size = 0
        self.active = False
        self.key_ts = -1
        self.overflows = 0
        self.on_key = None  # called (no arguments) when a key frame starts a new buffer

    def on_video(self, view, n: int, timestamp: int) -> None:
        """A packet `view[:n]` of the key stream."""
        if timestamp != self.key_ts and self.key_test(view, n):
            for lst in self.packets:
                lst.clear()
            self.size, self.active, self.key_ts = 0, True, timestamp
            if self.on_key is not None:
                self.on_key()
        if self.active:
            self._keep(self.video_index, view, n)

    def on_other(self, index: int, view, n: int) -> None:
        if self.active:
            self._keep(index, view, n)

    def _keep(self, index: int, view, n: int) -> None:
        self.size += n
        if self.size > self.max_bytes:
            self.reset()
            self.overflows += 1
            return
        self.packets[index].append(bytes(view[:n]))

    def reset(self) -> None:
        for lst in self.packets:
            lst.clear()
        self.size, self.active, self.key_ts = 0, False, -1

    def snapshot(self, index: int) -> list[bytes]:
        return list(self.packets[index])
