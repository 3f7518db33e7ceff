"""Drive tests/peers/gst_origin.py (a real GStreamer RTSP origin) from the venv python.

    with GstOrigin(vod={"clip": clip.path}, live="live") as origin:
        url = origin.url("/clip")
        ...
        origin.wait_for(lambda e: e["event"] == "session-created", timeout=5)
        assert origin.session_count("/clip") == 1
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path

GST_PYTHON = "/usr/bin/python3"  # Debian's python has `gi`; the venv does not
SCRIPT = Path(__file__).with_name("gst_origin.py")
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
DEFAULT_RTSP_PORT = 554
LOOPBACK_HOSTS = range(2, 255)  # 127.0.0.N


def free_loopback_host(port: int, *, exclude: tuple[str, ...] = ()) -> str:
    """A 127.0.0.N (N random) where TCP `port` is free now, so parallel runs each get their own
    address for a fixed port such as 554 (binding below 1024 needs root). Racy by nature: callers
    retry with another address when the server then fails to bind."""
    for n in random.sample(LOOPBACK_HOSTS, len(LOOPBACK_HOSTS)):
        host = f"127.0.0.{n}"
        if host in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return host
    raise OSError(f"no 127.0.0.N has TCP port {port} free")


def start_on_free_loopback(make: Callable[[str], GstOrigin], port: int = DEFAULT_RTSP_PORT,
                           attempts: int = 4) -> GstOrigin:
    """make(host) for a free 127.0.0.N, started; another host when another run took that one first."""
    tried: tuple[str, ...] = ()
    for _ in range(attempts):
        host = free_loopback_host(port, exclude=tried)
        tried += (host,)
        try:
            return make(host).start()
        except OriginError:
            continue
    raise OriginError(f"could not start an origin on port {port} of {', '.join(tried)}")

Event = dict


class PeerMissing(RuntimeError):
    """A binary or library the peer needs is not installed; fixtures turn this into a skip."""


class OriginError(RuntimeError):
    pass


def check_gst_origin_available() -> None:
    if not os.access(GST_PYTHON, os.X_OK):
        raise PeerMissing(f"{GST_PYTHON} not found")
    probe = subprocess.run(
        [GST_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
         "from gi.repository import GstRtspServer"],
        capture_output=True, timeout=30)
    if probe.returncode != 0:
        lines = probe.stderr.decode(errors="replace").strip().splitlines() or ["(no output)"]
        raise PeerMissing("GstRtspServer (gir1.2-gst-rtsp-server-1.0, python3-gi) is not importable: "
                          + lines[-1])


@dataclasses.dataclass(frozen=True)
class LiveOptions:
    width: int = 320
    height: int = 240
    fps: int = 25
    gop_frames: int = 25
    bitrate_kbps: int = 500
    pattern: str = "ball"
    # Not prerolled: prepared on the first DESCRIBE, its first video held back this long (a shared
    # camera or looped-file mount that prepares slowly), unprepared when its last client leaves.
    lazy_prepare_ms: int | None = None

    def argv(self, mount: str) -> list[str]:
        argv = ["--live", mount, "--live-width", str(self.width), "--live-height", str(self.height),
                "--live-fps", str(self.fps), "--live-gop", str(self.gop_frames),
                "--live-bitrate-kbps", str(self.bitrate_kbps), "--live-pattern", self.pattern]
        if self.lazy_prepare_ms is not None:
            argv += ["--live-lazy-ms", str(self.lazy_prepare_ms)]
        return argv


@dataclasses.dataclass(frozen=True)
class OriginShape:
    """How the origin shapes what it serves, as servers other than gst-rtsp-server do (see
    gst_origin.py's docstring). The defaults are gst-rtsp-server's own answers."""

    live_per_client: tuple[str, ...] = ()  # live mounts built for each client
    slow_live: tuple[str, ...] = ()  # shared live mounts prepared on demand, slowly
    slow_live_prepare_ms: int = 1500
    slow_live_teardown_ms: int = 1000
    slow_live_describe_ms: int = 200
    controls: str = "stream"  # stream (stream=N) | track (trackN) | absolute (URLs)
    content_base: str = "echo"  # echo (the request URL) | portless (drop :554)
    sdp_omit: tuple[str, ...] = ()  # exact SDP lines to drop, e.g. "a=type:broadcast"
    vod_range_from_zero: bool = False  # a=range:npt=0-D instead of npt=now-D

    def argv(self) -> list[str]:
        argv = []
        for mount in self.live_per_client:
            argv += ["--live-per-client", mount.strip("/")]
        for mount in self.slow_live:
            argv += ["--slow-live", mount.strip("/")]
        if self.slow_live:
            argv += ["--slow-live-prepare-ms", str(self.slow_live_prepare_ms),
                     "--slow-live-teardown-ms", str(self.slow_live_teardown_ms),
                     "--slow-live-describe-ms", str(self.slow_live_describe_ms)]
        if self.controls != "stream":
            argv += ["--controls", self.controls]
        if self.content_base != "echo":
            argv += ["--content-base", self.content_base]
        for line in self.sdp_omit:
            argv += ["--sdp-omit", line]
        if self.vod_range_from_zero:
            argv += ["--vod-range-from-zero"]
        return argv


class GstOrigin:
    """One gst_origin.py subprocess. Events are collected by a reader thread; all access is locked."""

    def __init__(self, *, vod: Mapping[str, os.PathLike | str] | None = None, live: str | None = None,
                 live_options: LiveOptions = LiveOptions(), protocols: str = "both",
                 session_timeout: int = 60, headers: Mapping[str, str] | None = None,
                 port: int = 0, host: str = "127.0.0.1", stderr_path: Path | None = None,
                 relay: Mapping[str, str] | None = None, auth: tuple[str, str, str] | None = None,
                 shape: OriginShape | None = None, tls: tuple[os.PathLike, os.PathLike] | None = None):
        self._proc: subprocess.Popen | None = None
        # Mounts point at symlinks so set_vod_content() can swap what new sessions get.
        self._link_dir = Path(tempfile.mkdtemp(prefix="gst-origin-mounts-"))
        weakref.finalize(self, shutil.rmtree, self._link_dir, ignore_errors=True)
        self.vod: dict[str, Path] = {}
        for mount, path in (vod or {}).items():
            self.set_vod_content(mount, path)
        self.live = live
        self.live_options = live_options
        self.relay = dict(relay or {})  # mount -> RTSP URL relayed (a GStreamer restreamer)
        self.protocols = protocols
        self.session_timeout = session_timeout
        self.headers = dict(headers or {})
        # (scheme, user, password): every mount needs that user, scheme "basic" or "digest"; the
        # origin then emits a {"event": "response", "status", "authorization"} line per response
        self.auth = auth
        self.shape = shape if shape is not None else OriginShape()
        self.tls = tls  # (certificate, key) PEM files: serve rtsps://, url() says so
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.stderr_path = stderr_path
        self._reader: threading.Thread | None = None
        self._events: list[Event] = []
        self._cond = threading.Condition()

    # --- lifecycle ---

    def argv(self, port: int) -> list[str]:
        argv = [GST_PYTHON, "-u", str(SCRIPT), "--address", self.host, "--port", str(port),
                "--protocols", self.protocols, "--session-timeout", str(self.session_timeout)]
        for mount, path in self.vod.items():
            argv += ["--vod", f"{mount}={os.fspath(path)}"]
        if self.live:
            argv += self.live_options.argv(self.live.strip("/"))
        for mount, url in self.relay.items():
            argv += ["--relay", f"{mount.strip('/')}={url}"]
        for name, value in self.headers.items():
            argv += ["--header", f"{name}:{value}"]
        if self.auth:
            argv += ["--auth", ":".join(self.auth)]
        if self.tls:
            argv += ["--tls-cert", os.fspath(self.tls[0]), "--tls-key", os.fspath(self.tls[1])]
        return argv + self.shape.argv()

    def start(self, timeout: float = READY_TIMEOUT_S) -> GstOrigin:
        if self._proc is not None:
            raise OriginError("origin already running")
        # A restart keeps the old port so URLs handed out stay valid.
        port = self.port if self.port is not None else self.requested_port
        stderr = open(self.stderr_path, "ab") if self.stderr_path else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(self.argv(port), stdout=subprocess.PIPE, stderr=stderr,
                                          stdin=subprocess.DEVNULL)
        finally:
            if self.stderr_path:
                stderr.close()
        generation = self._generation = getattr(self, "_generation", 0) + 1
        self._reader = threading.Thread(target=self._read_events, args=(self._proc, generation),
                                        name="gst-origin-events", daemon=True)
        self._reader.start()
        try:
            ready = self.wait_for(lambda e: e["event"] in ("ready", "exited") and e["gen"] == generation,
                                  timeout=timeout)
        except TimeoutError:
            self.stop()
            raise OriginError(f"gst origin did not become ready within {timeout}s") from None
        if ready["event"] != "ready":
            self._proc = None
            raise OriginError(f"gst origin exited before ready (rc={ready.get('returncode')}); "
                              f"stderr: {self.stderr_path}")
        self.port = ready["port"]
        return self

    def _read_events(self, proc: subprocess.Popen, generation: int) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"event": "unparsed", "line": raw.decode(errors="replace").rstrip()}
            event["gen"] = generation
            with self._cond:
                self._events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._events.append({"event": "exited", "gen": generation, "returncode": proc.wait()})
            self._cond.notify_all()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code (None if never started)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        return proc.returncode

    def restart(self, timeout: float = READY_TIMEOUT_S) -> GstOrigin:
        """Stop and start again on the same port (e.g. to simulate an origin outage)."""
        self.stop()
        return self.start(timeout=timeout)

    def __enter__(self) -> GstOrigin:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def set_vod_content(self, mount: str, path: os.PathLike | str) -> None:
        """Serve `path` at `mount` from now on (sessions that start later); no restart needed.

        Mounts can only be added before start(): gst_origin.py reads them from its command line.
        """
        mount = mount.strip("/")
        if mount not in self.vod and self._proc is not None:
            raise OriginError(f"cannot add mount {mount!r} to a running origin")
        link = self._link_dir / f"{mount.replace('/', '_')}.mp4"
        tmp = link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(Path(path).resolve())
        os.replace(tmp, link)  # atomic: a session opens either the old or the new file
        self.vod[mount] = link

    # --- addressing ---

    @property
    def authority(self) -> str:
        if self.port is None:
            raise OriginError("origin not started")
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, path: str = "") -> str:
        """rtsp://host:port/path; on the default port 554 the port is left out, as players write it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        authority = host if self.port == DEFAULT_RTSP_PORT else self.authority
        return f"{'rtsps' if self.tls else 'rtsp'}://{authority}/{path.lstrip('/')}"

    # --- events ---

    @property
    def events(self) -> list[Event]:
        """Snapshot of all events so far (every generation; each carries `gen`)."""
        with self._cond:
            return list(self._events)

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0, *,
                 after: int = 0) -> Event:
        """First event (from index `after`) matching `predicate`; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = after
            while True:
                while index < len(self._events):
                    if predicate(self._events[index]):
                        return self._events[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching origin event within {timeout}s")
                self._cond.wait(remaining)

    def wait_until(self, condition: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
        """Wait until `condition(events)` is true for the whole event list."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self._events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"origin events did not satisfy the condition within {timeout}s")
                self._cond.wait(remaining)
            return list(self._events)

    def mark(self) -> int:
        """Current event index; pass as `after=` to only look at later events."""
        with self._cond:
            return len(self._events)

    def sessions_created(self, path: str | None = None, *, after: int = 0) -> list[Event]:
        return [e for e in self.events[after:] if e["event"] == "session-created"
                and (path is None or e.get("path") == "/" + path.strip("/"))]

    def session_count(self, path: str | None = None, *, after: int = 0) -> int:
        return len(self.sessions_created(path, after=after))

    def open_sessions(self) -> set[str]:
        created, closed = set(), set()
        for e in self.events:
            if e["event"] == "session-created":
                created.add(e["session"])
            elif e["event"] == "session-closed":
                closed.add(e["session"])
        return created - closed

    def responses(self, status: int | None = None, *, after: int = 0) -> list[Event]:
        """Response events (only with `auth`): status and whether the request carried Authorization."""
        return [e for e in self.events[after:] if e["event"] == "response"
                and (status is None or e["status"] == status)]

    def requests(self, method: str | None = None, *, after: int = 0) -> list[Event]:
        return [e for e in self.events[after:] if e["event"] == "request"
                and (method is None or e["method"] == method.upper())]


def gst_launch_binary() -> str:
    path = shutil.which("gst-launch-1.0")
    if path is None:
        raise PeerMissing("gst-launch-1.0 not found on PATH")
    return path
