"""A server-side playlist through the cache ([MS-RTSP] 3.2.4.1-2, 4.4.5, 3.2.5.1 step 3), through a real
proxyd process: every entry is filled, committed with the presentation and served in order, the
same on the first play (the player follows the fill) and on later plays (origin stopped)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from urllib.parse import urlsplit

from proxyd.cache.playlist import stored_gen_id
from proxyd.wm.cache_control import parse_cache_control
from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.proxyd.wmext.harness import rtsp_exchange
from tests.wmorigin import wire
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer


def packets(result) -> list[int]:
    return [sum(s.packets for s in entry.streams.values()) for entry in result.entries]


def assert_played_like_the_origin(result, direct, playlist, url: str) -> None:
    assert result.error is None, result.error
    assert packets(result) == packets(direct)
    first, second = result.entries
    assert b"End-Of-Playlist-Entry: true" in first.eos.body  # more entries follow
    assert b"end-of-playlist-entry" not in second.eos.body.lower()  # the last one
    assert first.eos.header("X-Playlist-Gen-Id") == str(playlist.items[0].gen_id)
    assert second.eos.header("X-Playlist-Gen-Id") == str(playlist.items[1].gen_id)
    (announce,) = result.announces
    assert int(announce.header("X-Playlist-Gen-Id")) == playlist.items[1].gen_id
    # the entry's own Cache-Control, max-age less the entry's age when served from cache
    served = parse_cache_control(announce.header("Cache-Control"))
    origin = parse_cache_control(direct.announces[0].header("Cache-Control"))
    assert dataclasses.replace(served, max_age=None) == dataclasses.replace(origin, max_age=None)
    assert origin.max_age - 60 < served.max_age <= origin.max_age
    def sdp_lines(body: bytes) -> list[str]:  # all but the control URLs, which point at the proxy
        return [line for line in body.decode().splitlines() if not line.startswith("a=control:")]

    assert sdp_lines(announce.body) == sdp_lines(direct.announces[0].body)  # the next entry's own SDP
    assert sdp_lines(announce.body) != sdp_lines(result.describe.body)
    assert announce.uri.startswith(url) and second.sdp.control.startswith(url)
    assert [s.asf_packets for s in second.streams.values()] == \
        [s.asf_packets for s in direct.entries[1].streams.values()]
    # the final EndOfStream leaves the session READY: the player's TEARDOWN still finds it
    assert result.status("TEARDOWN")[-1] == 200


async def test_two_entry_playlist_is_cached_whole(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    playlist = wm_origin.set_entry("/pl.wsx", seed="one", playlist=("two",))
    direct = await WMPlayer(wm_origin.url("/pl.wsx"), transport="tcp", send_event=False).run()
    assert direct.error is None and len(direct.entries) == 2, direct.error

    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/pl.wsx")
    first = await WMPlayer(url, transport="tcp", send_event=False).run()
    assert_played_like_the_origin(first, direct, playlist, url)
    wait_for_log(proxy.log_path, r"cache: committed .*pl\.wsx .*2 entries")
    assert committed_urls(tmp_path / "cache") == [wm_origin.url("/pl.wsx")]
    plays = wm_origin.counts("/pl.wsx")["PLAY"]

    wm_origin.take_down()
    for transport in ("tcp", "udp"):
        again = await WMPlayer(url, transport=transport, send_event=False).run()
        assert_played_like_the_origin(again, direct, playlist, url)
    assert wm_origin.counts("/pl.wsx")["PLAY"] == plays


async def test_stale_generation_is_412_from_the_cached_playlist(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    playlist = wm_origin.set_entry("/pl.wsx", seed="gen", playlist=("gen2",), duration_ms=800)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/pl.wsx")
    assert (await WMPlayer(url, transport="tcp", send_event=False).run()).error is None
    wait_for_log(proxy.log_path, r"cache: committed .*2 entries")
    wm_origin.take_down()
    stale = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", "7")])
    fresh = await rtsp_exchange(url, "DESCRIBE", [("X-Playlist-Gen-Id", str(playlist.items[0].gen_id))])
    assert (stale.status, fresh.status) == (412, 200)
    assert stale.header("X-Playlist-Gen-Id") == str(playlist.items[0].gen_id)


class RawPlayer:
    """One RTSP connection driven request by request; server requests and RTP are kept apart."""

    def __init__(self, url: str) -> None:
        self.url, self.cseq, self.session = url, 0, ""
        self.server_requests: list[wire.Message] = []
        self.rtp_packets = 0

    async def __aenter__(self) -> RawPlayer:
        parts = urlsplit(self.url)
        self.reader, self.writer = await asyncio.open_connection(parts.hostname, parts.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()

    async def request(self, method: str, uri: str, headers=(), body: bytes = b"") -> wire.Message:
        self.cseq += 1
        extra = [("Session", self.session)] if self.session else []
        msg = wire.Message(method=method, uri=uri, headers=[("CSeq", str(self.cseq)), *extra, *headers], body=body)
        self.writer.write(msg.encode())
        async with asyncio.timeout(10):
            while True:
                item = await self.next_item()
                if isinstance(item, wire.Message) and not item.method and item.cseq == self.cseq:
                    self.session = self.session or (item.header("Session") or "").split(";")[0]
                    return item

    async def next_item(self):
        item = await wire.read_item(self.reader)
        if item is None:
            raise ConnectionError("closed")
        if isinstance(item, wire.Frame) and item.channel % 2 == 0:
            self.rtp_packets += 1
        elif isinstance(item, wire.Message) and item.method:
            self.server_requests.append(item)
        return item

    async def server_request(self, method: str) -> wire.Message:
        async with asyncio.timeout(10):
            while not any(r.method == method for r in self.server_requests):
                await self.next_item()
        found = next(r for r in self.server_requests if r.method == method)
        self.server_requests.remove(found)
        return found

    async def setup_all(self, sdp_body: bytes, gen_id: str) -> None:
        controls = [line[len("a=control:"):] for line in sdp_body.decode().splitlines()
                    if line.startswith("a=control:")]
        for i, control in enumerate(c for c in controls if c.rstrip("/") != self.url.rstrip("/")):
            url = control if "://" in control else f"{self.url}/{control}"
            resp = await self.request("SETUP", url, [("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"),
                                                     ("X-Playlist-Gen-Id", gen_id)])
            assert resp.status == 200, (url, resp.status)


async def test_playlist_skip_and_seek_id_from_the_cache(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    playlist = wm_origin.set_entry("/pl.wsx", seed="skip", playlist=("skip2",), duration_ms=800)
    first_gen, second_gen = (str(item.gen_id) for item in playlist.items)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/pl.wsx")
    assert (await WMPlayer(url, transport="tcp", send_event=False).run()).error is None
    wait_for_log(proxy.log_path, r"cache: committed .*2 entries")
    wm_origin.take_down()
    async with RawPlayer(url) as player:
        describe = await player.request("DESCRIBE", url, [("Accept", "application/sdp")])
        await player.setup_all(describe.body, first_gen)
        assert (await player.request("PAUSE", url)).status == 455  # READY, no entry boundary (3.2.5.11)
        back = await player.request("PLAY", url, [("X-Playlist", "pl-offset=-1")])
        assert back.status == 400  # no previous entry
        skip = await player.request("PLAY", url, [("X-Playlist", "pl-offset=1"), ("X-Playlist-Gen-Id", first_gen)])
        assert (skip.status, skip.header("X-Playlist-Change-Notice")) == (200, "true")
        eos = await player.server_request("SET_PARAMETER")
        assert b"End-Of-Playlist-Entry: true" in eos.body and eos.header("X-Playlist-Gen-Id") == first_gen
        announce = await player.server_request("ANNOUNCE")
        assert announce.header("X-Playlist-Gen-Id") == second_gen
        assert player.rtp_packets == 0  # a skip sends no media of the skipped entry
        assert (await player.request("PAUSE", url)).status == 200  # just after an entry boundary
        # a player that missed the Announce plays the previous entry: the EndOfStream is sent again
        again = await player.request("PLAY", url, [("X-Playlist-Seek-Id", first_gen)])
        assert (again.status, again.header("X-Playlist-Change-Notice")) == (200, "true")
        eos = await player.server_request("SET_PARAMETER")
        assert eos.header("X-Playlist-Gen-Id") == first_gen
        assert (await player.server_request("ANNOUNCE")).header("X-Playlist-Gen-Id") == second_gen
        stale = await player.request("SETUP", f"{url}/audio", [("X-Playlist-Gen-Id", "12345"),
                                                               ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        assert stale.status == 412 and stale.header("X-Playlist-Gen-Id") == second_gen


async def test_a_changed_playlist_is_replaced_whole(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/pl.wsx", seed="v", playlist=("v2",), duration_ms=800, max_age=1)
    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir)
    url = proxy.url("/wm/pl.wsx")
    assert (await WMPlayer(url, transport="tcp", send_event=False).run()).error is None
    wait_for_log(proxy.log_path, r"cache: committed .*2 entries")
    wait_expired(cache_dir)
    changed = wm_origin.change_content("/pl.wsx")  # a new version of every entry
    result = await WMPlayer(url, transport="tcp", send_event=False).run()
    assert result.error is None, result.error
    assert [e.gen_id for e in result.entries] == changed.gen_ids()  # never an old entry in between
    wait_for_log(proxy.log_path, r"cache: committed .*2 entries", count=2)
    stored = [json.loads(m.read_text())["body"] for m in (cache_dir / "entries").glob("*/meta.json")]
    assert len(stored) == 1
    gen_ids = [stored_gen_id(stored[0])] + [item["gen_id"] for item in stored[0]["playlist"]]
    assert gen_ids == changed.gen_ids()


def wait_expired(cache_dir) -> None:
    for meta in (cache_dir / "entries").glob("*/meta.json"):
        remaining = json.loads(meta.read_text())["body"]["expires_at"] - time.time()
        if remaining > 0:
            time.sleep(remaining + 0.05)  # freshness is wall-clock time by definition
