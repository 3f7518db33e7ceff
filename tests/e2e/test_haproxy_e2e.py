"""deploy/haproxy/rtsp-tcp.cfg, as shipped except for its addresses, in front of two proxyd nodes
(127.0.0.2, 127.0.0.3): ffmpeg plays over RTSP/TCP through it, players spread over both nodes, and
a stopped node is taken out by the RTSP health check while the other keeps serving."""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_until
from tests.peers.proxyd_proc import free_tcp_port, log_tail

pytestmark = pytest.mark.peers

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "rtsp-tcp.cfg"
NODE_HOSTS = ("127.0.0.2", "127.0.0.3")


def port_free_on_all(hosts: tuple[str, ...], attempts: int = 50) -> int:
    """One port number free on every address: the balancer and the nodes share it, as on a real
    deployment (all on 554) where proxyd takes a request-URI with its own port as addressed to it."""
    for _ in range(attempts):
        port = free_tcp_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


def render_config(listen_port: int, servers: list[str], stats_socket: Path) -> str:
    """The shipped file with test addresses: the bind port, the server addresses, the stats socket."""
    text = CONFIG.read_text()
    text = re.sub(r"(?m)^(\s+bind )\S+", rf"\g<1>127.0.0.1:{listen_port}", text)
    text = re.sub(r"(?m)^(\s+stats socket )\S+", rf"\g<1>{stats_socket}", text)
    lines = iter(servers)
    text = re.sub(r"(?m)^(\s+server \S+ )\S+", lambda m: m.group(1) + next(lines), text)
    assert next(lines, None) is None, "the example has fewer server lines than the test has nodes"
    return text


class HaproxyStats:
    def __init__(self, path: Path) -> None:
        self.path = path

    def servers(self) -> dict[str, dict[str, str]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.path))
            sock.sendall(b"show stat\n")
            data = b"".join(iter(lambda: sock.recv(65536), b""))
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {row["svname"]: row for row in rows if row["pxname"] == "proxyd"
                and row["svname"] not in ("FRONTEND", "BACKEND")}


@pytest.fixture
def haproxy(tmp_path):
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.skip("haproxy is not installed (Debian package haproxy; ./runtests installs it)")
    started: list[subprocess.Popen] = []

    def start(port: int, servers: list[str]) -> HaproxyStats:
        stats = tmp_path / "haproxy.sock"
        config = tmp_path / "haproxy.cfg"
        config.write_text(render_config(port, servers, stats))
        subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True)
        log = open(tmp_path / "haproxy.log", "wb")
        proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        log.close()
        wait_until(lambda: stats.exists() or proc.poll() is not None, timeout=10, what="haproxy's stats socket")
        assert proc.poll() is None, log_tail(tmp_path / "haproxy.log")
        return HaproxyStats(stats)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def test_ffmpeg_over_tcp_through_haproxy_reaches_both_nodes_and_survives_one_going_down(
        haproxy, proxyd_process, shared_gst_origin, peer_players, tmp_path):
    port = port_free_on_all(("127.0.0.1", *NODE_HOSTS))
    nodes = [proxyd_process(routes={"/vod": shared_gst_origin.url()}, host=host, port=port) for host in NODE_HOSTS]
    stats = haproxy(port, [f"{n.host}:{n.port}" for n in nodes])
    wait_until(lambda: {s["status"] for s in stats.servers().values()} == {"UP"}, timeout=15,
               what="both nodes UP by the RTSP health check")

    url = f"rtsp://127.0.0.1:{port}/vod/long"  # 6 s: the first player is still connected when the second arrives
    results = []
    players = [threading.Thread(target=lambda: results.append(
        peer_players.ffmpeg_play(url, transport="tcp", decode=False))) for _ in NODE_HOSTS]
    players[0].start()
    wait_until(lambda: sum(int(s["scur"]) for s in stats.servers().values()) == 1, timeout=15,
               what="the first player connected through haproxy")
    players[1].start()
    for player in players:
        player.join(60)
    assert len(results) == 2 and all(r.ok for r in results), [r.describe() for r in results] + [
        log_tail(tmp_path / "haproxy.log")]
    # leastconn: the second player arrives while the first is connected, so each node gets one
    assert sorted(int(s["stot"]) for s in stats.servers().values()) == [1, 1]

    nodes[1].stop()
    wait_until(lambda: stats.servers()["node2"]["status"].startswith("DOWN"), timeout=15,
               what="the stopped node marked DOWN")
    after = peer_players.ffmpeg_play(url, transport="tcp", decode=False)
    assert after.ok, after.describe()
    assert int(stats.servers()["node1"]["stot"]) == 2
