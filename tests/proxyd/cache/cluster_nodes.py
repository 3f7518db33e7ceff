"""Three proxyd nodes on 127.0.0.2-4 as one cache (standalone: --cluster-peer), for the cluster tests."""

from __future__ import annotations

import time

from proxyd.cluster import Peer, rendezvous_owner
from proxyd.rtsp.uri import url_key
from tests.peers.proxyd_proc import free_tcp_port

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
POLL_S = 0.05


def start_cluster(proxyd_process, origin_url: str, tmp_path, *extra: str, killed_owner_of: str = "") -> dict:
    """address -> proxyd on 127.0.0.2-4, each listing the others with --cluster-peer; the owner of
    `killed_owner_of` (an origin URL) is not expected to exit cleanly."""
    addresses = [f"{host}:{free_tcp_port(host)}" for host in HOSTS]
    doomed = owner_of(addresses, killed_owner_of) if killed_owner_of else ""
    nodes = {}
    for address in addresses:
        host, port = address.split(":")
        peers = [f"--cluster-peer={a}" for a in addresses if a != address]
        nodes[address] = proxyd_process(
            routes={"/vod": origin_url}, host=host, port=int(port), cache_dir=tmp_path / f"cache-{host}",
            log_path=tmp_path / f"proxyd-{host}.log", expect_clean_exit=address != doomed,
            extra_args=[*peers, "--cache-ttl", "300", "--log-level", "DEBUG", *extra])
    return nodes


def owner_of(addresses, origin_url: str) -> str:
    members = [Peer(a.split(":")[0], int(a.split(":")[1])) for a in addresses]
    return rendezvous_owner(url_key(origin_url), members).address


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    """Until `condition()` holds (another process's progress, seen by polling), else TimeoutError."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(POLL_S)  # polling another process's progress: no event to wait on
