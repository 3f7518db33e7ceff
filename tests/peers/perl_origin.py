"""A second real RTSP server: Debian's rtsp-server-perl (RTSP::Server), fed by ffmpeg.

    with PerlRtspOrigin(clip.path, mount="live") as origin:
        url = origin.url()          # rtsp://127.0.0.N:PORT/live

rtsp-server-perl takes streams a source publishes (ANNOUNCE + RECORD on its source port) and serves
them to players on its client port. Here ffmpeg publishes an MP4 clip looped forever at its real
rate (`-re -stream_loop -1 -c copy`), so players see a live stream. Its answers differ from
gst-rtsp-server's: the SDP is the publisher's own (no Content-Base header, `a=control:streamid=N`
relative to the request URL, no `a=range`, no `a=control:*`), a `Session` header already on the
DESCRIBE answer, no RTP-Info, and media over UDP only (a SETUP without `client_port` gets 400).
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.peers.origin import DEFAULT_RTSP_PORT, PeerMissing, free_loopback_host
from tests.peers.proxyd_proc import free_tcp_port

SERVER_BINARY = "rtsp-server-perl"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.1
# Each SETUP (publisher or player) takes the next two UDP ports from --rtp_start_port on; a random
# even base per server keeps parallel runs apart.
RTP_PORT_BASES = range(40000, 59000, 200)


def check_perl_origin_available() -> None:
    for name in (SERVER_BINARY, "ffmpeg"):
        if shutil.which(name) is None:
            raise PeerMissing(f"{name} not found on PATH (Debian package rtsp-server-perl / ffmpeg)")


def _describe_status(host: str, port: int, url: str) -> int | None:
    """Status code of one DESCRIBE, None if the server is not answering yet."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
            head = s.recv(4096).split(b"\r\n", 1)[0].split()
            return int(head[1]) if len(head) >= 2 and head[1].isdigit() else None
    except OSError:
        return None


class PerlRtspOrigin:
    def __init__(self, clip: Path, *, mount: str = "live", host: str | None = None, port: int | None = None,
                 log_path: Path | None = None):
        self.clip = clip
        self.mount = mount.strip("/")
        # A 127.0.0.N of its own (on 554, one where 554 is free), so parallel runs do not collide.
        self.host = host or free_loopback_host(port or 0)
        self.port = port if port is not None else free_tcp_port(self.host)
        self.source_port = free_tcp_port(self.host)
        self.rtp_start_port = random.choice(RTP_PORT_BASES)
        self.log_path = log_path
        self.server: subprocess.Popen | None = None
        self.publisher: subprocess.Popen | None = None

    def url(self, path: str | None = None) -> str:
        """The stream's URL (or `path`'s); on the default port 554 the port is left out."""
        authority = self.host if self.port == DEFAULT_RTSP_PORT else f"{self.host}:{self.port}"
        return f"rtsp://{authority}/{(path if path is not None else self.mount).lstrip('/')}"

    def server_argv(self) -> list[str]:
        return [SERVER_BINARY, "--clientport", str(self.port), "--serverport", str(self.source_port),
                "--client_listen_address", self.host, "--source_listen_address", self.host,
                "--rtp_start_port", str(self.rtp_start_port)]

    def publisher_argv(self) -> list[str]:
        return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re", "-stream_loop", "-1",
                "-i", str(self.clip), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "udp",
                f"rtsp://{self.host}:{self.source_port}/{self.mount}"]

    def start(self, timeout: float = READY_TIMEOUT_S) -> PerlRtspOrigin:
        check_perl_origin_available()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.server = subprocess.Popen(self.server_argv(), stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT)
            self._wait(lambda: _describe_status(self.host, self.port, self.url()) is not None, timeout,
                       "listening")
            self.publisher = subprocess.Popen(self.publisher_argv(), stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT)
            self._wait(lambda: _describe_status(self.host, self.port, self.url()) == 200, timeout,
                       f"serving /{self.mount}")
        except BaseException:
            self.stop()
            raise
        finally:
            if self.log_path:
                log.close()
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for proc in (self.server, self.publisher):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {what}; "
                                       f"log: {self.log_path}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"rtsp-server-perl not {what} on {self.url()} within {timeout}s")
            time.sleep(POLL_S)  # polling a foreign server: it has no readiness signal to wait on

    def stop(self) -> None:
        # The publisher first (SIGTERM: ffmpeg sends TEARDOWN), then the server (it quits on SIGINT).
        for proc, sig in ((self.publisher, signal.SIGTERM), (self.server, signal.SIGINT)):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.publisher = self.server = None

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.poll() is None

    def __enter__(self) -> PerlRtspOrigin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
