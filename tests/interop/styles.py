"""The origin styles of the interop matrix: origins shaped like servers nobody here wrote.

gst-rtsp-server configured or rewritten into other servers' answers (tests/peers/gst_origin.py's
shape options), and Debian's rtsp-server-perl fed by ffmpeg (tests/peers/perl_origin.py).
"""

from __future__ import annotations

import dataclasses

from tests.peers.media import ClipSpec
from tests.peers.origin import OriginShape

CLIP = ClipSpec(duration_s=2)
PERL_CLIP = ClipSpec(duration_s=10)  # looped by the publisher: few loop seams in a play
MOUNT = "clip"


@dataclasses.dataclass(frozen=True)
class OriginStyle:
    name: str
    server: str  # "gst" | "perl"
    live: bool
    shape: OriginShape = OriginShape()
    default_port: bool = False  # listen on 554, so URLs (and echoed Content-Base) carry no port
    udp_only: bool = False  # the origin refuses interleaved TCP: direct plays use UDP
    # A fresh origin for each test: the slow shared mount is still shutting down for a while after a
    # test's last player left, and the next test's first DESCRIBE would get its 503.
    origin_per_test: bool = False
    # Live: how much video time a play counts (players.ffmpeg_play's video_span).
    live_span_s: float = 3.0
    # A bug issue 10 names that fails this style with the cache on, until its fix reaches main.
    cache_on_bug: str = ""
    # What its DESCRIBE answer (to rtsp://host:port/MOUNT, port always written) must and must not
    # hold, so the matrix is known to test the shape it names. {host} {port} are filled in; a
    # content_base of None means no Content-Base header.
    content_base: str | None = "rtsp://{host}:{port}/" + MOUNT + "/"
    sdp_has: tuple[str, ...] = ()
    sdp_lacks: tuple[str, ...] = ()

    def direct_transport(self, transport: str) -> str:
        return "udp" if self.udp_only else transport


STYLES = (
    # live555, cameras: on 554, Content-Base without the port, a=control:trackN, no a=type, npt=0-D.
    OriginStyle("vod-554-track-portless", "gst", live=False, default_port=True,
                shape=OriginShape(controls="track", content_base="portless",
                                  sdp_omit=("a=type:broadcast",), vod_range_from_zero=True),
                content_base="rtsp://{host}/" + MOUNT + "/",
                sdp_has=("a=control:track1", "a=control:track2", "a=control:*", "a=range:npt=0-2"),
                sdp_lacks=("a=type:broadcast",)),
    # Absolute stream controls and no aggregate a=control:* (the request URL is the aggregate).
    OriginStyle("vod-absolute-controls", "gst", live=False,
                shape=OriginShape(controls="absolute", sdp_omit=("a=control:*",), vod_range_from_zero=True),
                sdp_has=("a=control:rtsp://{host}:{port}/" + MOUNT + "/stream=0",
                         "a=control:rtsp://{host}:{port}/" + MOUNT + "/stream=1", "a=range:npt=0-2"),
                sdp_lacks=("a=control:*", "a=control:stream=0")),
    # a=type:broadcast on a VOD with a finite range, a=control:*, relative stream=N (GStreamer's own
    # answer but for the range, which GStreamer writes npt=now-D).
    OriginStyle("vod-broadcast-finite", "gst", live=False, shape=OriginShape(vod_range_from_zero=True),
                sdp_has=("a=type:broadcast", "a=control:*", "a=range:npt=0-2", "a=control:stream=0")),
    # A live source built for each client (many cameras).
    OriginStyle("live-per-client", "gst", live=True, shape=OriginShape(live_per_client=(MOUNT,)),
                sdp_has=("a=range:npt=now-", "a=control:stream=0")),
    # A shared live mount that prepares on demand and slowly (a camera, a looped file).
    OriginStyle("live-shared-slow", "gst", live=True,
                shape=OriginShape(slow_live=(MOUNT,), slow_live_prepare_ms=800),
                origin_per_test=True, sdp_has=("a=range:npt=now-", "a=control:stream=0")),
    # Debian's rtsp-server-perl on its default port 554: the publisher's SDP, streamid=N controls
    # relative to a port-less request URL (no Content-Base), UDP only.
    # Counted over 4 s: the Perl server drops a few packets when the machine is loaded (seen 71/75
    # through proxyd at load average 23 while direct got 75), which a 3 s span barely absorbs.
    OriginStyle("perl-live-554", "perl", live=True, default_port=True, udp_only=True, content_base=None,
                live_span_s=4.0,
                sdp_has=("a=control:streamid=0", "a=control:streamid=1"),
                sdp_lacks=("a=control:*", "a=type:broadcast")),
)
