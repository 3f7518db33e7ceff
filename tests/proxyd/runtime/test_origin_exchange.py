"""One origin exchange per player request: a real origin (GStreamer) sees at most one DESCRIBE per
player DESCRIBE, whichever strategy (cache, split, relay) ends up serving it, and none for a cache
hit or a player joining a running split."""

from __future__ import annotations

import itertools

import pytest

from proxyd.rtsp.oneshot import rtsp_request
from tests.peers.origin import GstOrigin, LiveOptions
from tests.proxyd.cache.helpers import wait_for_log

pytestmark = pytest.mark.peers

SMALL_LIVE = LiveOptions(width=160, height=120, fps=25, gop_frames=25, bitrate_kbps=200)
COMMITTED = r"cache: committed rtsp://\S+/clip "
_settles = itertools.count()


def origin_describes(origin: GstOrigin, after: int) -> int:
    """DESCRIBEs the origin logged since `after`, once every earlier request of ours is logged: an
    OPTIONS sent directly afterwards comes out of the origin's (single-threaded) loop after them."""
    uri = origin.url(f"/settle-{next(_settles)}")
    rtsp_request(uri, "OPTIONS", timeout=5)
    origin.wait_for(lambda e: e["event"] == "request" and e["method"] == "OPTIONS" and e.get("uri") == uri,
                    after=after)
    return len(origin.requests("DESCRIBE", after=after))


def describe(url: str):
    return rtsp_request(url, "DESCRIBE", [("Accept", "application/sdp")], timeout=20)


def start_proxy(proxyd_process, origin, tmp_path, *extra: str, cache: bool = False):
    return proxyd_process(routes={"/o": origin.url("/")}, cache_dir=tmp_path / "cache" if cache else None,
                          extra_args=["--log-level", "DEBUG", *extra])


@pytest.mark.parametrize("cache", [False, True], ids=["relay", "cache-miss"])
def test_vod_one_origin_describe_per_player_describe(gst_origin, proxyd_process, peer_players, tmp_path,
                                                    cache):
    """Relay: one per player. Cache: the miss asks once and starts the fill; the next player
    replays the growing recording without asking."""
    extra = ("--cache-ttl", "300") if cache else ()
    proxy = start_proxy(proxyd_process, gst_origin, tmp_path, *extra, cache=cache)
    mark = gst_origin.mark()
    assert describe(proxy.url("/o/clip")).status == 200
    assert origin_describes(gst_origin, mark) == 1

    mark = gst_origin.mark()
    played = peer_players.ffmpeg_play(proxy.url("/o/clip"), transport="tcp", decode=False)
    assert played.ok, played.describe()
    assert origin_describes(gst_origin, mark) == (0 if cache else 1)


def test_vod_cache_hit_asks_the_origin_nothing(gst_origin, proxyd_process, peer_players, tmp_path):
    proxy = start_proxy(proxyd_process, gst_origin, tmp_path, "--cache-ttl", "300", cache=True)
    first = peer_players.ffmpeg_play(proxy.url("/o/clip"), transport="tcp", decode=False)
    assert first.ok, first.describe()
    wait_for_log(proxy.log_path, COMMITTED)

    mark = gst_origin.mark()
    assert describe(proxy.url("/o/clip")).status == 200
    assert origin_describes(gst_origin, mark) == 0


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache-on"])
def test_live_split_one_describe_for_the_first_player_none_for_the_next(gst_origin, proxyd_process,
                                                                       tmp_path, cache):
    proxy = start_proxy(proxyd_process, gst_origin, tmp_path, "--live", "/o", cache=cache)
    mark = gst_origin.mark()
    assert describe(proxy.url("/o/live")).status == 200
    assert origin_describes(gst_origin, mark) == 1
    wait_for_log(proxy.log_path, r"split rtsp://\S+/live started")

    mark = gst_origin.mark()
    assert describe(proxy.url("/o/live")).status == 200
    assert origin_describes(gst_origin, mark) == 0  # the hub's answer


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache-on"])
def test_live_relayed_one_describe_per_player_describe(gst_origin, proxyd_process, peer_players, tmp_path,
                                                      cache):
    proxy = start_proxy(proxyd_process, gst_origin, tmp_path, "--split", "never", cache=cache)
    for _ in range(2):
        mark = gst_origin.mark()
        played = peer_players.ffmpeg_play(proxy.url("/o/live"), transport="tcp", duration=1.0, decode=False)
        assert played.ok, played.describe()
        assert origin_describes(gst_origin, mark) == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_cache_on_plays_a_shared_live_mount_that_prepares_slowly(gst_origin_factory, proxyd_process,
                                                                peer_players, tmp_path, transport):
    """gst-rtsp-server unprepares a shared media when its last client leaves and answers 503 while
    doing so: the cache's DESCRIBE, closed on seeing live content, then the split's and the relay's
    DESCRIBE on new connections got 503 (often, not always: the count below tells every time)."""
    lazy = LiveOptions(width=160, height=120, bitrate_kbps=200, lazy_prepare_ms=1500)
    origin = gst_origin_factory(live="live", live_options=lazy)
    proxy = start_proxy(proxyd_process, origin, tmp_path, cache=True)
    for _ in range(3):
        mark = origin.mark()
        played = peer_players.ffmpeg_play(proxy.url("/o/live"), transport=transport, duration=1.0,
                                          decode=False)
        assert played.ok, played.describe()
        assert origin_describes(origin, mark) == 1  # not split (the origin does not permit it): relayed
