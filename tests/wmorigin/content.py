"""What the test origin serves: entries (a file, a two-entry server-side playlist, a broadcast, or a
broadcast playlist whose entry changes when a test ends it), their Cache-Control ([MS-RTSP]
2.2.6.2), validators and precomputed RTP schedule."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from email.utils import formatdate

from tests.wmorigin import asfpf
from tests.wmorigin.asf import AsfFile, build_asf

EVENT_SUBSCRIPTION = 'x-wms-event-subscription="remote-log,remote-open,remote-close"'


@dataclass(frozen=True)
class Scheduled:
    send_time: int  # ms, relative to the item's start
    stream: int
    payload: asfpf.RtpPayload


@dataclass
class Item:
    """One playable ASF file: a plain entry or one entry of a server-side playlist."""

    seed: object
    version: int
    asf: AsfFile
    gen_id: int
    schedule: list[Scheduled]

    def start_index(self, npt_ms: int) -> int:
        """First schedule index for a seek: the last video key frame at or before npt_ms
        (what a WMS origin does, so the picture can be decoded at once)."""
        key_times = [s.send_time for s in self.schedule if s.payload.key and s.stream == 2
                     and s.send_time <= npt_ms]
        start = max(key_times, default=0)
        return next((i for i, s in enumerate(self.schedule) if s.send_time >= start), len(self.schedule))


def gen_id_for(path: str, seed: object, version: int, index: int) -> int:
    """X-Playlist-Gen-Id (2.2.6.22, 1..2^32-1): stable while the content is unchanged, so a
    re-set identical entry keeps its id and a changed one gets a new id."""
    return zlib.crc32(f"{path}|{seed}|{version}|{index}".encode()) % 0xFFFFFFFE + 1


def make_item(seed: object, version: int, duration_ms: int, rtp_payload_limit: int, gen_id: int) -> Item:
    asf = build_asf(seed, version, duration_ms=duration_ms)
    schedule: list[Scheduled] = []
    for stream in asf.streams:
        packets = [(asfpf.strip_padding(p.data), p.send_time, p.key) for p in asf.packets_for(stream.number)]
        schedule += [Scheduled(pl.timestamp, stream.number, pl)
                     for pl in asfpf.payloads(packets, rtp_payload_limit)]
    schedule.sort(key=lambda s: s.send_time)  # stable: keeps per-stream order
    return Item(seed, version, asf, gen_id, schedule)


@dataclass
class Entry:
    path: str
    seed: object
    version: int = 1
    cache_control: str | None = None  # None: the default below
    broadcast: bool = False
    playlist: tuple = ()  # seeds of further server-side playlist entries
    duration_ms: int = 3000
    rtp_payload_limit: int = 1200
    max_age: int = 86399  # for the default Cache-Control (2.2.6.2.1)
    items: list[Item] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        seeds = (self.seed, *self.playlist)
        self.items = [make_item(s, self.version, self.duration_ms, self.rtp_payload_limit,
                                gen_id_for(self.path, s, self.version, i)) for i, s in enumerate(seeds)]

    @property
    def is_playlist(self) -> bool:
        return bool(self.playlist)

    def features(self, index: int = 0) -> tuple[str, ...]:
        """SDP a=type tokens (2.2.5.2.6)."""
        live = ("broadcast", "notseekable", "notstridable") if self.broadcast else ()
        if self.is_playlist:  # a broadcast playlist too: its entries change by Announce (3.2.4.2)
            return (*live, "playlist", "lastentry") if index == len(self.items) - 1 else (*live, "playlist")
        return live

    def cache_control_value(self, index: int = 0) -> str:
        if self.cache_control is not None:
            return self.cache_control
        if self.broadcast:
            # No x-wms-content-size for broadcasts (2.2.6.2.9); live is split, never cached.
            kind = "broadcast,playlist" if self.is_playlist else "broadcast"  # 2.2.6.2.12
            return (f'max-age={self.max_age}, public, proxy-revalidate, x-wms-stream-type="{kind}", '
                    'x-wms-proxy-split, ' + EVENT_SUBSCRIPTION)
        parts = [f"max-age={self.max_age}", "public", "proxy-revalidate"]
        if not self.is_playlist:  # Windows servers omit the size for playlists (note <4>)
            parts.append(f"x-wms-content-size={self.items[index].asf.size}")
        else:
            parts.append('x-wms-stream-type="playlist"')
        parts.append(EVENT_SUBSCRIPTION)
        return ", ".join(parts)

    @property
    def etag(self) -> str:
        digest = hashlib.sha1(f"{self.path}|{self.seed}|{self.playlist}|{self.version}".encode()).hexdigest()
        return f'"{digest[:16]}"'

    @property
    def last_modified(self) -> str:
        # Deterministic and strictly increasing with the version.
        return formatdate(1_767_225_600 + 3600 * self.version, usegmt=True)

    def gen_ids(self) -> list[int]:
        return [item.gen_id for item in self.items]
