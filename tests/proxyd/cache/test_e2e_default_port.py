"""An origin on the default port 554 whose Content-Base omits the port, through the cache.

The proxy asks rtsp://H:554/clip; the origin answers `Content-Base: rtsp://H/clip/` with relative
controls, so the stream URLs the cache recorded (rtsp://H/clip/stream=N) and the ones the player's
SETUPs map to (rtsp://H:554/clip/stream=N) are two spellings of one resource (proxyd.rtsp.uri).
Compared as strings every SETUP answered 404, on the miss and from the committed entry alike.
"""

from __future__ import annotations

import pytest

from proxyd.rtsp.oneshot import rtsp_request
from tests.proxyd.cache.helpers import committed_urls, wait_for_log
from tests.proxyd.default_port_origin import portless_origin_on_554

pytestmark = pytest.mark.peers

COMMITTED = r"cache: committed rtsp://\S+/clip "


@pytest.fixture
def origin_on_554(test_clips, tmp_path):
    with portless_origin_on_554(vod={"clip": test_clips.main.path},
                                stderr_path=tmp_path / "gst-origin.log") as origin:
        yield origin


@pytest.mark.parametrize("route_port", [":554", ""], ids=["route-with-port", "route-without-port"])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_origin_on_554_without_port_in_content_base_plays_through_cache(
        origin_on_554, proxyd_process, peer_players, test_clips, tmp_path, route_port, transport):
    host = origin_on_554.host
    describe = rtsp_request(f"rtsp://{host}:554/clip", "DESCRIBE", headers=[("Accept", "application/sdp")])
    assert describe.headers.get("Content-Base") == f"rtsp://{host}/clip/"  # the shape under test
    assert b"a=control:stream=0" in describe.body

    cache_dir = tmp_path / "cache"
    proxy = proxyd_process(routes={"/o": f"rtsp://{host}{route_port}/clip"}, cache_dir=cache_dir,
                           extra_args=["--cache-ttl", "300"])
    expected = test_clips.main.spec
    miss = peer_players.ffmpeg_play(proxy.url("/o"), transport=transport)
    assert miss.ok, miss.describe()
    assert miss.video_frames >= 0.95 * expected.video_frames, miss.describe()
    assert miss.audio_frames >= 0.95 * expected.audio_frames, miss.describe()
    wait_for_log(proxy.log_path, COMMITTED)
    assert committed_urls(cache_dir) == [f"rtsp://{host}:554/clip"]

    origin_on_554.stop()  # the second play can only come from the committed entry
    hit = peer_players.ffmpeg_play(proxy.url("/o"), transport=transport)
    assert hit.ok, hit.describe()
    assert hit.video_frames >= 0.95 * expected.video_frames, hit.describe()
    assert hit.audio_frames >= 0.95 * expected.audio_frames, hit.describe()
    assert hit.first_video_crcs[:3] == miss.first_video_crcs[:3]
