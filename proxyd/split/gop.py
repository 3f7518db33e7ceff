"""Join buffer: the packets of every stream since the latest H.264 key frame, so a late joiner
starts with a decodable picture at once (its RTP-Info names the first buffered packet).

The buffer restarts at the first packet of an access unit holding an SPS or IDR slice (a new
timestamp) and is dropped when it grows past its byte limit, until the next key frame.
"""

from __future__ import annotations

from proxyd.rtp.packet import is_h264_keyframe


class JoinBuffer:
    def __init__(self, stream_count: int, video_index: int | None, max_bytes: int) -> None:
        self.video_index = video_index
        self.max_bytes = max_bytes
        self.packets: list[list[bytes]] = [[] for _ in range(stream_count)]
        self.size = 0
        self.active = False
        self.key_ts = -1
        self.overflows = 0
        self.on_key = None  # called (no arguments) when a key frame starts a new buffer

    def on_video(self, view, n: int, payload_offset: int, timestamp: int) -> None:
        if timestamp != self.key_ts and is_h264_keyframe(view, payload_offset, n):
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
