"""An origin on the default port 554 whose Content-Base omits the port, through the cache.

The proxy asks rtsp://H:554/clip; the origin answers `Content-Base: rtsp://H/clip/` with relative
controls, so the stream URLs the cache recorded (rtsp://H/clip/stream=N) and the ones the player's
SETUPs map to (rtsp://H:554/clip/stream=N) are two spellings of one resource (proxyd.rtsp.uri).
Compared as strings every SETUP answered 404, on the miss and from the committed entry alike.
Each test binds its own 127.0.0.N:554 (root needed below 1024), so parallel runs do not collide.
"""

from __future__ import annotations

import random
import socket

import pytest

from proxyd.rtsp.oneshot import rtsp_request
from tests.peers.origin import GstOrigin, OriginError, PeerMissing, check_gst_origin_available
from tests.proxyd.cache.helpers import committed_urls, wait_for_log

pytestmark = pytest.mark.peers

DEFAULT_PORT = 554
BIND_ATTEMPTS = 4  # another run may take the 127.0.0.N we picked before our origin binds it
COMMITTED = r"cache: committed rtsp://\S+/clip "


class PortlessOrigin(GstOrigin):
    """gst_origin.py with `--content-base portless`: Content-Base never names port 554."""

    def argv(self, port: int) -> list[str]:
        return [*super().argv(port), "--content-base", "portless"]


def free_loopback_host() -> str:
    for n in random.sample(range(2, 255), 253):
        host = f"127.0.0.{n}"
        with socket.socket() as probe:
            try:
                probe.bind((host, DEFAULT_PORT))
            except OSError:
                continue
            return host
    raise OSError(f"no 127.0.0.N has TCP port {DEFAULT_PORT} free")


@pytest.fixture
def origin_on_554(test_clips, tmp_path):
    try:
        check_gst_origin_available()
    except PeerMissing as exc:
        pytest.skip(str(exc))
    for attempt in range(BIND_ATTEMPTS):
        origin = PortlessOrigin(vod={"clip": test_clips.main.path}, host=free_loopback_host(),
                                port=DEFAULT_PORT, stderr_path=tmp_path / f"gst-origin-{attempt}.log")
        try:
            origin.start()
        except OriginError:
            if attempt == BIND_ATTEMPTS - 1:
                raise
            continue
        try:
            yield origin
        finally:
            origin.stop()
        return


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
