"""Join buffer: the packets of every stream since the latest key frame of the key stream (H.264 or
x-asf-pf video), so a late joiner starts with a decodable picture at once (its RTP-Info names the
first buffered packet).

The buffer restarts at a packet where a key frame starts (proxyd.rtp.keyframe) with a new RTP
timestamp: the other packets of that frame (same timestamp: the rest of an access unit, further
ASF packets of the key frame) and continuation fragments never restart it mid-frame. It is dropped
when it grows past its byte limit, until the next key frame.

Packets are copied back to back into one arena of the byte limit (an anonymous mapping: only the
pages a GOP has used are resident) and indexed by two preallocated arrays (end offset, stream): the buffer holds no Python object per
packet (it used to keep a bytes copy of each); a joiner's snapshot copies its stream's packets out.
"""

from __future__ import annotations

import mmap
from array import array

from proxyd.rtp.keyframe import KeyTest

INITIAL_SLOTS = 4096  # packets indexed before the first growth (a 4 Mbit/s, 2 s GOP is about 800)


class JoinBuffer:
    def __init__(self, stream_count: int, video_index: int | None, max_bytes: int,
                 key_test: KeyTest | None = None) -> None:
        self.video_index = video_index  # the key stream; None: no join buffer (start at the live point)
        self.key_test = key_test
        self.max_bytes = max_bytes
        self.stream_count = stream_count
        self.arena = mmap.mmap(-1, max(1, max_bytes)) if video_index is not None else None
        self.arena_view = memoryview(self.arena) if self.arena is not None else None
        self.ends = array("L", bytes(array("L").itemsize * INITIAL_SLOTS))  # packet i: ends[i-1]..ends[i]
        self.streams = array("H", bytes(2 * INITIAL_SLOTS))
        self.count = 0
        self.size = 0
        self.active = False
        self.key_ts = -1
        self.overflows = 0
        self.on_key = None  # called (no arguments) when a key frame starts a new buffer

    def on_video(self, view, n: int, timestamp: int) -> None:
        """A packet `view[:n]` of the key stream."""
        if timestamp != self.key_ts and self.key_test(view, n):
            self.count, self.size, self.active, self.key_ts = 0, 0, True, timestamp
            if self.on_key is not None:
                self.on_key()
        if self.active:
            self._keep(self.video_index, view, n)

    def on_other(self, index: int, view, n: int) -> None:
        if self.active:
            self._keep(index, view, n)

    def _keep(self, index: int, view, n: int) -> None:
        start = self.size
        end = start + n
        if end > self.max_bytes:
            self.reset()
            self.overflows += 1
            return
        count = self.count
        if count == len(self.ends):  # a GOP of more packets than ever before: grow once, keep it
            self.ends.extend(self.ends)
            self.streams.extend(self.streams)
        self.arena[start:end] = view[:n]  # (no memoryview slice of the arena per packet)
        self.ends[count] = end
        self.streams[count] = index
        self.count, self.size = count + 1, end

    def reset(self) -> None:
        self.count, self.size, self.active, self.key_ts = 0, 0, False, -1

    def snapshot(self, index: int) -> list[bytes]:
        """Copies of stream `index`'s packets, oldest first (for one joiner)."""
        packets, start, arena = [], 0, self.arena
        ends, streams = self.ends, self.streams
        for i in range(self.count):
            end = ends[i]
            if streams[i] == index:
                packets.append(arena[start:end])
            start = end
        return packets
