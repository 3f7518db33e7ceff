"""What a fill records, stream by stream and entry by entry (proxyd.cache.recorder.Fill keeps the
session): each stream's timeline, each item's media and replay source, and the stored metadata of
the DESCRIBE answer."""

from __future__ import annotations

from proxyd.cache.freshness import sdp_duration, validators_of
from proxyd.cache.media import EntryMedia
from proxyd.cache.replay_source import ReplaySource
from proxyd.rtp.keyframe import key_start_test
from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.events import Response
from proxyd.rtsp.uri import content_base

RTCP_BYE = 203


def rtcp_has_bye(data: bytes) -> bool:
    offset = 0
    while offset + 4 <= len(data):
        if data[offset + 1] == RTCP_BYE:
            return True
        offset += (((data[offset + 2] << 8) | data[offset + 3]) + 1) * 4
    return False


class StreamInfo:
    __slots__ = ("control", "clock_rate", "encoding", "is_key", "rtptime0", "bye", "last_us", "packets", "shift",
                 "resumed_after")

    def __init__(self, control: str, clock_rate: int, encoding: str) -> None:
        self.control, self.clock_rate, self.encoding = control, clock_rate, encoding
        self.is_key = key_start_test(encoding)
        self.rtptime0: int | None = None
        self.bye = False
        self.last_us = -1
        self.packets = 0
        # A resumed fill: added to the new session's RTP timestamps (None: set by its first packet),
        # and the media time up to which this stream was recorded before (None: not resumed).
        self.shift: int | None = 0
        self.resumed_after: int | None = None


def describe_body(url: str, resp: Response, decision, now: float) -> dict:
    """The stored metadata of a DESCRIBE response (before the media is known)."""
    cc = resp.headers.get_all("Cache-Control")
    v = validators_of(resp)
    ttl = decision.ttl_seconds or 0
    return {"url": url, "sdp": resp.body.decode("latin-1"), "content_base": content_base(resp.headers, url),
            "headers": [[n, v_] for n, v_ in resp.headers.items()
                        if n.lower() not in ("cseq", "content-length", "session", "date")],
            "cache_control": ", ".join(cc) if cc else None, "last_modified": v.last_modified,
            "etag": v.etag, "content_size": v.content_size, "ttl": ttl,
            "revalidate": decision.revalidate_before_serving, "fetched_at": now, "expires_at": now + ttl,
            "duration": sdp_duration(resp.body)}


class FillItem:
    """One presentation or playlist entry being recorded: its streams, media, and the source that
    replays it (shared by every player of the fill; `rtptime0` is filled in as the origin tells)."""

    def __init__(self, meta: dict, url: str) -> None:
        self.meta = meta  # sdp, content_base, cache_control, gen_id, duration, supported
        sdp = Sdp.parse(meta["sdp"].encode("latin-1"))
        base = meta["content_base"]
        self.aggregate = sdp.aggregate_url(base)
        self.streams: list[StreamInfo] = []
        for section, control in zip(sdp.media, sdp.media_urls(base)):
            pt = int(section.formats[0]) if section.formats and section.formats[0].isdigit() else -1
            rtpmap = section.rtpmap(pt)
            self.streams.append(StreamInfo(control, section.clock_rate or 90000,
                                           rtpmap.encoding if rtpmap else ""))
        keys = tuple(i for i, s in enumerate(self.streams) if s.is_key is not None)
        self.media = EntryMedia(len(self.streams), keys)
        self.rtptime0: list[int | None] = [None] * len(self.streams)
        self.complete = False
        self.source = ReplaySource(self.media, [s.control for s in self.streams],
                                   [s.clock_rate for s in self.streams], self.rtptime0, meta.get("duration"),
                                   release=lambda n: None, served_from="origin", content_url=url,
                                   gen_id=meta["gen_id"], sdp=meta["sdp"],
                                   cache_control=meta.get("cache_control"), supported=meta.get("supported"))

    def anchor(self, index: int, rtptime: int) -> None:
        self.streams[index].rtptime0 = self.rtptime0[index] = rtptime

    def stored(self) -> dict:
        """The entry's metadata as committed (the media's checksum is added by the store)."""
        return {**self.meta, "streams": [{"control": s.control, "clock_rate": s.clock_rate,
                                          "encoding": s.encoding, "key_frames": s.is_key is not None,
                                          "rtptime0": s.rtptime0} for s in self.streams]}


def supported_of(headers) -> str | None:
    values = [v for n, v in headers if n.lower() == "supported"]
    return ", ".join(values) if values else None
