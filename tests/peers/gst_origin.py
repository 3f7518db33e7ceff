#!/usr/bin/python3
"""Real RTSP origin for tests and benchmarks, built on GStreamer's gst-rtsp-server.

Run with Debian's /usr/bin/python3 (it has `gi`), not the project venv:

    /usr/bin/python3 tests/peers/gst_origin.py --port 0 --vod clip=/path/a.mp4 --live live

Serves on-demand MP4 files (H.264 + AAC, seekable, real duration) and optionally one shared live
mount (test pattern + tone, x264 zerolatency with a short GOP). Prints one JSON object per line on
stdout: {"event": "ready", "port": N} first, then client/session/request events with a monotonic
timestamp `t`, so tests can count what a proxy did upstream. SIGTERM/SIGINT stop it cleanly.

Shapes other servers take (the interop matrix, tests/interop/):
* `--live-per-client MOUNT`: a live source built for each client, as many cameras do.
* `--slow-live MOUNT`: a shared live mount that is not prepared up front, takes
  `--slow-live-prepare-ms` to set up and `--slow-live-teardown-ms` to shut down (a camera or a
  looped file source behaves so), and each DESCRIBE takes `--slow-live-describe-ms` before it looks
  the media up. A DESCRIBE that finds it idle waits for the set-up; the last client leaving
  unprepares it, and a DESCRIBE arriving meanwhile gets gst-rtsp-server's 503.
  Emits `media-unprepared` when the shutdown is done. Clients get a thread each (as with
  gst-rtsp-server's default of one thread, one client's shutdown would hold up all the others).
* `--controls stream|track|absolute`: stream controls `stream=N` (GStreamer's own), `trackN` (set on
  each stream, so SETUPs naming them match by configuration), or absolute URLs (the DESCRIBE answer's
  SDP is rewritten in `send-message`; SETUPs on those URLs carry the same path, so they match).
* `--content-base echo|portless`: echo the request URL (GStreamer's own: port-less only when the
  request omitted it) or always drop the default port 554, as servers on 554 do (header rewritten).
* `--sdp-omit LINE` / `--vod-range-from-zero`: drop SDP lines such as `a=type:broadcast` or
  `a=control:*` (GStreamer sends both), and answer a finite VOD range as `npt=0-D` instead of
  GStreamer's `npt=now-D` (SDP rewritten).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

AAC_ENCODERS = ("avenc_aac", "voaacenc", "fdkaacenc")
AUTH_ROLE = "user"
CONTROL_STYLES = ("stream", "track", "absolute")
CONTENT_BASE_STYLES = ("echo", "portless")
DEFAULT_RTSP_PORT = 554
SDP_CONTROL = re.compile(r"^a=control:(stream=\d+)$")
SDP_NOW_RANGE = re.compile(r"^a=range:npt=now-(\d+(?:\.\d+)?)$")
# The last path segment of a SETUP URL that names a stream, in any --controls style.
STREAM_CONTROL_SUFFIX = re.compile(r"/(?:stream=\d+|track\d+)$")
REQUEST_SIGNALS = ("options", "describe", "setup", "play", "pause", "teardown",
                   "get-parameter", "set-parameter", "announce")


def emit(event: str, **fields) -> None:
    fields = {"event": event, "t": round(time.monotonic(), 6), **fields}
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def vod_launch(path: str) -> str:
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    return (f'( filesrc location="{location}" ! qtdemux name=d '
            "d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 "
            "d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )")


def pick_aac_encoder() -> str:
    for name in AAC_ENCODERS:
        if Gst.ElementFactory.find(name) is not None:
            return name
    raise SystemExit(f"gst_origin: no AAC encoder installed (tried {', '.join(AAC_ENCODERS)})")


def live_launch(args: argparse.Namespace) -> str:
    aac = pick_aac_encoder()
    # nal-hrd=cbr + filler keeps the stream at the configured bitrate whatever the picture is,
    # so benchmarks get the load they ask for.
    return (f"( videotestsrc is-live=true pattern={args.live_pattern} ! "
            f"video/x-raw,width={args.live_width},height={args.live_height},framerate={args.live_fps}/1 ! "
            f"{slow_start(args.live_lazy_ms)}x264enc tune=zerolatency speed-preset=ultrafast threads=1 bitrate={args.live_bitrate_kbps} "
            f"vbv-buf-capacity=1000 key-int-max={args.live_gop} option-string=nal-hrd=cbr:filler=1 ! "
            "video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 "
            "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=1 ! "
            f"audioconvert ! {aac} ! aacparse ! rtpmp4gpay name=pay1 pt=97 )")


def slow_start(delay_ms: int | None) -> str:
    """A queue that lets nothing through until it holds `delay_ms` of video, so the media's prepare
    takes that long (the stream then runs with that much latency)."""
    if not delay_ms:
        return ""
    ns = delay_ms * 1_000_000
    return f"queue min-threshold-time={ns} max-size-time={2 * ns} max-size-buffers=0 max-size-bytes=0 ! "


def relay_launch(url: str) -> str:
    """A GStreamer RTSP relay: one rtspsrc session on `url`, re-payloaded and shared by every client
    (what gst-rtsp-server based restreamers do): the C reference proxy of the split benchmark."""
    location = url.replace('"', '\\"')
    return (f'( rtspsrc location="{location}" latency=200 name=src '
            "src. ! application/x-rtp,media=video ! rtph264depay ! h264parse ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 "
            "src. ! application/x-rtp,media=audio ! rtpmp4gdepay ! aacparse ! rtpmp4gpay name=pay1 pt=97 )")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed in the ready event)")
    p.add_argument("--vod", action="append", default=[], metavar="MOUNT=PATH",
                   help="serve an MP4 (H.264 + AAC) on demand at /MOUNT; repeatable")
    p.add_argument("--live", metavar="MOUNT", help="serve a shared live source at /MOUNT")
    p.add_argument("--live-per-client", action="append", default=[], metavar="MOUNT",
                   help="serve a live source at /MOUNT built for each client (not shared); repeatable")
    p.add_argument("--slow-live", action="append", default=[], metavar="MOUNT",
                   help="serve a shared live source at /MOUNT, prepared on demand and slowly; repeatable")
    p.add_argument("--slow-live-prepare-ms", type=int, default=1500,
                   help="how long each --slow-live prepare holds the pipeline's first buffer")
    p.add_argument("--slow-live-teardown-ms", type=int, default=1000,
                   help="how long each --slow-live shutdown holds its EOS")
    p.add_argument("--slow-live-describe-ms", type=int, default=200,
                   help="how long each DESCRIBE of a --slow-live mount takes before it looks the media up")
    p.add_argument("--controls", choices=CONTROL_STYLES, default="stream",
                   help="stream control form in the SDP: stream=N, trackN (N from 1) or absolute URLs")
    p.add_argument("--content-base", choices=CONTENT_BASE_STYLES, default="echo",
                   help="Content-Base: echo the request URL, or drop the default port 554 from it")
    p.add_argument("--sdp-omit", action="append", default=[], metavar="LINE",
                   help="drop this exact line from every SDP (e.g. a=type:broadcast); repeatable")
    p.add_argument("--vod-range-from-zero", action="store_true",
                   help="answer a finite range as a=range:npt=0-D (GStreamer sends npt=now-D)")
    p.add_argument("--relay", action="append", default=[], metavar="MOUNT=URL",
                   help="relay the H.264 + AAC RTSP stream at URL, shared, at /MOUNT; repeatable")
    p.add_argument("--live-width", type=int, default=320)
    p.add_argument("--live-height", type=int, default=240)
    p.add_argument("--live-fps", type=int, default=25)
    p.add_argument("--live-gop", type=int, default=25, help="frames between IDR frames")
    p.add_argument("--live-bitrate-kbps", type=int, default=500)
    p.add_argument("--live-pattern", default="ball", help="videotestsrc pattern")
    p.add_argument("--live-lazy-ms", type=int, default=None, metavar="MS",
                   help="do not preroll the live mount: it prepares on the first DESCRIBE and its "
                        "first video buffer is held back MS milliseconds (a camera or looped file that "
                        "prepares slowly); unprepared again when its last client leaves")
    p.add_argument("--protocols", choices=("udp", "tcp", "both"), default="both")
    p.add_argument("--session-timeout", type=int, default=60, help="seconds (Session: ...;timeout=)")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                   help="extra header added to every response; repeatable")
    p.add_argument("--auth", metavar="SCHEME:USER:PASSWORD",
                   help="require this user on every mount; SCHEME is basic or digest (the password may "
                        "contain ':')")
    p.add_argument("--auth-realm", default="gst-origin", help="realm of the --auth challenge")
    p.add_argument("--tls-cert", metavar="FILE", help="serve RTSP over TLS (rtsps) with this PEM certificate")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    return p.parse_args(argv)


class Origin:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(args.address)
        self.server.set_service(str(args.port))
        if args.slow_live:  # a thread per client, so one client's slow unprepare does not hold the others
            self.server.get_thread_pool().set_max_threads(-1)
        self.extra_headers = [tuple(h.split(":", 1)) for h in args.header]
        for h in self.extra_headers:
            if len(h) != 2 or not h[0].strip():
                raise SystemExit(f"gst_origin: bad --header {h!r}, expected NAME:VALUE")
        self.setup_paths: dict[int, str | None] = {}
        self.sent_authorization: dict[int, bool] = {}  # client -> its last request had Authorization
        self.next_client_id = 1
        mounts = self.server.get_mount_points()
        protocols = {
            "udp": GstRtsp.RTSPLowerTrans.UDP,
            "tcp": GstRtsp.RTSPLowerTrans.TCP,
            "both": GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP,
        }[args.protocols]
        for spec in args.vod:
            mount, sep, path = spec.partition("=")
            if not sep or not mount or not path:
                raise SystemExit(f"gst_origin: bad --vod {spec!r}, expected MOUNT=PATH")
            self._add(mounts, mount, vod_launch(path), shared=False, protocols=protocols)
        if args.live:
            self._add(mounts, args.live, live_launch(args), shared=True, protocols=protocols)
        for mount in args.slow_live:
            self._add(mounts, mount, live_launch(args), shared=True, protocols=protocols, slow=True)
        for mount in args.live_per_client:
            self._add(mounts, mount, live_launch(args), shared=False, protocols=protocols)
        for spec in args.relay:
            mount, sep, url = spec.partition("=")
            if not sep or not mount or not url:
                raise SystemExit(f"gst_origin: bad --relay {spec!r}, expected MOUNT=URL")
            self._add(mounts, mount, relay_launch(url), shared=True, protocols=protocols)
        if args.auth or args.tls_cert:
            auth = self._auth(args.auth, args.auth_realm) if args.auth else self._anonymous_auth()
            if args.tls_cert:  # gst-rtsp-server speaks TLS (rtsps) when its auth holds a certificate
                auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(args.tls_cert, args.tls_key))
            self.server.set_auth(auth)
        self.server.connect("client-connected", self.on_client_connected)
        self.server.get_session_pool().connect("session-removed", self.on_session_removed)

    @staticmethod
    def _auth(spec: str, realm: str):
        """RTSPAuth accepting one user with Basic or Digest (GStreamer >= 1.16 for Digest); clients
        without it get 401 and the scheme's challenge on every mount."""
        scheme, _, rest = spec.partition(":")
        user, sep, password = rest.partition(":")
        if scheme not in ("basic", "digest") or not sep or not user:
            raise SystemExit(f"gst_origin: bad --auth {spec!r}, expected basic|digest:USER:PASSWORD")
        auth = GstRtspServer.RTSPAuth()
        auth.set_realm(realm)
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, AUTH_ROLE)
        if scheme == "basic":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(user, password, token)
        return auth

    @staticmethod
    def _anonymous_auth():
        """RTSPAuth letting every client in (the holder of a TLS certificate, nothing more)."""
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, AUTH_ROLE)
        auth.set_default_token(token)
        return auth

    def rewrites_describe(self) -> bool:
        a = self.args
        return (a.controls == "absolute" or a.content_base != "echo" or bool(a.sdp_omit)
                or a.vod_range_from_zero)

    def _add(self, mounts, mount: str, launch: str, *, shared: bool, protocols, slow: bool = False) -> None:
        factory = GstRtspServer.RTSPMediaFactory()
        if self.args.auth or self.args.tls_cert:  # only the auth's token may open and build the media
            factory.add_role_from_structure(Gst.Structure.from_string(
                f"{AUTH_ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
        factory.set_launch(launch)
        factory.set_shared(shared)
        factory.set_protocols(protocols)
        factory.connect("media-configure", self.on_media_configure, mount)
        if slow:
            factory.connect("media-configure", self.on_slow_media_configure, mount)
        mounts.add_factory("/" + mount.strip("/"), factory)

    def start(self) -> int:
        if self.server.attach(None) == 0:
            raise SystemExit(f"gst_origin: cannot listen on {self.args.address}:{self.args.port}")
        GLib.timeout_add(500, self.cleanup_sessions)
        port = self.server.get_bound_port()
        if self.args.live and self.args.live_lazy_ms is None:
            self.preroll_live(port)
        emit("ready", port=port, address=self.args.address)
        return port

    def preroll_live(self, port: int) -> None:
        """Prepare the shared live media before any client arrives and hold it prepared.

        gst-rtsp-server 1.22 can abort (gst_rtsp_media_get_rates assertion) or stall a stream when
        several clients join a shared media that is still preparing; a media prepared up front
        (its cache key is port + path) avoids that window, and late joiners start faster.
        """
        mount = "/" + self.args.live.strip("/")
        factory = self.server.get_mount_points().match(mount)[0]
        res, url = GstRtsp.RTSPUrl.parse(f"rtsp://{self.args.address}:{port}{mount}")
        if res != GstRtsp.RTSPResult.OK:
            raise SystemExit(f"gst_origin: cannot build URL for live mount {mount}")
        self.live_media = factory.construct(url)
        # The media's bus needs a running context of its own: the main loop is not running yet.
        thread = self.server.get_thread_pool().get_thread(GstRtspServer.RTSPThreadType.MEDIA,
                                                          GstRtspServer.RTSPContext())
        if self.live_media is None or thread is None or not self.live_media.prepare(thread):
            raise SystemExit(f"gst_origin: live mount {mount} failed to prepare")

    def cleanup_sessions(self) -> bool:
        self.server.get_session_pool().cleanup()  # expires timed-out sessions
        return True

    # --- signal handlers (run on the GLib main loop) ---

    def on_client_connected(self, server, client) -> None:
        cid = self.next_client_id
        self.next_client_id += 1
        conn = client.get_connection()
        emit("client-connected", client=cid, peer=f"{conn.get_ip()}")
        client.connect("pre-setup-request", self.on_pre_setup, cid)
        client.connect("new-session", self.on_new_session, cid)
        client.connect("closed", self.on_client_closed, cid)
        if self.extra_headers or self.args.auth or self.rewrites_describe():
            client.connect("send-message", self.on_send_message, cid)
        if self.args.auth:  # pre-*-request runs before the auth check: note what the request carried
            for name in REQUEST_SIGNALS:
                client.connect(f"pre-{name}-request", self.on_pre_request, cid)
        for name in REQUEST_SIGNALS:
            client.connect(f"{name}-request", self.on_request, cid, name)
        if self.args.slow_live:
            client.connect("pre-describe-request", self.on_pre_describe_slow)

    def on_request(self, client, ctx, cid: int, method: str) -> None:
        uri = ctx.uri.get_request_uri() if ctx.uri is not None else None
        fields = {"client": cid, "method": method.upper().replace("-", "_"), "uri": uri}
        if ctx.request is not None:
            res, ua = ctx.request.get_header(GstRtsp.RTSPHeaderField.USER_AGENT, 0)
            if res == GstRtsp.RTSPResult.OK:
                fields["user_agent"] = ua
        emit("request", **fields)

    def on_pre_request(self, client, ctx, cid: int):
        res, _value = ctx.request.get_header(GstRtsp.RTSPHeaderField.AUTHORIZATION, 0)
        self.sent_authorization[cid] = res == GstRtsp.RTSPResult.OK
        return GstRtsp.RTSPStatusCode.OK

    def on_pre_describe_slow(self, client, ctx):
        # Runs before the media lookup: a DESCRIBE right after another client closed finds the
        # media already shutting down, whichever of the two the server's threads served first.
        if ctx.uri is not None and ctx.uri.abspath.strip("/") in {m.strip("/") for m in self.args.slow_live}:
            time.sleep(self.args.slow_live_describe_ms / 1000)
        return GstRtsp.RTSPStatusCode.OK

    def on_pre_setup(self, client, ctx, cid: int):
        # new-session carries no URI; remember the SETUP's path so session-created can name it.
        self.setup_paths[cid] = ctx.uri.abspath if ctx.uri is not None else None
        return GstRtsp.RTSPStatusCode.OK

    def on_new_session(self, client, session, cid: int) -> None:
        session.set_timeout(self.args.session_timeout)
        path = self.setup_paths.get(cid)
        if path is not None:
            path = STREAM_CONTROL_SUFFIX.sub("", path)
        emit("session-created", client=cid, session=session.get_sessionid(), path=path)

    def on_session_removed(self, pool, session) -> None:
        emit("session-closed", session=session.get_sessionid())

    def on_client_closed(self, client, cid: int) -> None:
        self.setup_paths.pop(cid, None)
        self.sent_authorization.pop(cid, None)
        emit("client-closed", client=cid)

    def on_send_message(self, client, session, message, cid: int) -> None:
        if message.get_type() != GstRtsp.RTSPMsgType.RESPONSE:
            return
        for name, value in self.extra_headers:
            message.add_header_by_name(name.strip(), value.strip())
        if self.rewrites_describe():
            self.rewrite_describe_answer(message)
        if self.args.auth:  # tests count challenges and what was let through
            _res, code, _uri, _version = message.parse_response()
            emit("response", client=cid, status=int(code),
                 authorization=self.sent_authorization.get(cid, False))

    def rewrite_describe_answer(self, message) -> None:
        """Give a DESCRIBE answer the configured shape: Content-Base and the SDP body."""
        res, base = message.get_header(GstRtsp.RTSPHeaderField.CONTENT_BASE, 0)
        if res != GstRtsp.RTSPResult.OK:
            return  # not a DESCRIBE answer
        if self.args.content_base == "portless":
            base = portless(base)
            message.remove_header(GstRtsp.RTSPHeaderField.CONTENT_BASE, -1)
            message.add_header(GstRtsp.RTSPHeaderField.CONTENT_BASE, base)
        res, body = message.get_body()
        if res != GstRtsp.RTSPResult.OK or not body:
            return
        lines = []
        for line in bytes(body).decode().rstrip("\r\n").split("\r\n"):
            if line in self.args.sdp_omit:
                continue
            if self.args.controls == "absolute":
                line = SDP_CONTROL.sub(lambda m: f"a=control:{base}{m.group(1)}", line)
            if self.args.vod_range_from_zero:
                line = SDP_NOW_RANGE.sub(r"a=range:npt=0-\1", line)
            lines.append(line)
        message.set_body(("\r\n".join(lines) + "\r\n").encode())

    def on_media_configure(self, factory, media, mount: str) -> None:
        if self.args.controls == "track":  # SETUP matching follows the control set here
            for index in range(media.n_streams()):
                media.get_stream(index).set_control(f"track{index + 1}")
        emit("media-configured", path="/" + mount.strip("/"))

    def on_slow_media_configure(self, factory, media, mount: str) -> None:
        """Take a while to set the media up (the DESCRIBE that builds it waits) and to shut it down:
        the unprepare holds the media's state lock, so a DESCRIBE that found it in the factory meanwhile
        cannot prepare it again (it is not reusable) and gets 503."""
        teardown_s = self.args.slow_live_teardown_ms / 1000

        def hold_shutdown(_media, state):
            if state == Gst.State.NULL:
                time.sleep(teardown_s)

        media.connect("target-state", hold_shutdown)
        # Not a buffer probe: held buffers would leave a gap in a live stream's first seconds.
        time.sleep(self.args.slow_live_prepare_ms / 1000)
        media.connect("unprepared", lambda _media: emit("media-unprepared", path="/" + mount.strip("/")))


def portless(url: str) -> str:
    """`url` without an explicit default port (rtsp://h:554/p -> rtsp://h/p)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if authority.endswith(f":{DEFAULT_RTSP_PORT}"):
        authority = authority[: -len(f":{DEFAULT_RTSP_PORT}")]
    return f"{scheme}{sep}{authority}{slash}{path}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    Gst.init(None)
    origin = Origin(args)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    origin.start()
    loop.run()
    emit("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
