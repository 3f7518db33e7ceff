"""The nodes as one cache, standalone (--cluster-peer): three proxyd processes on 127.0.0.2-4 in front
of one GStreamer origin behind a byte-counting forwarder. Each clip is filled from the origin once
per cluster, by the node owning it; the others fill through that owner. A dead owner sends the
node to the URL's next owner; a request marked by a peer is never forwarded again. (The owner dying
in the middle of a fill or split: test_e2e_cluster_failover.py.)"""

from __future__ import annotations

import concurrent.futures
import socket

import pytest

from proxyd.cluster import CLUSTER_HEADER, Peer, rendezvous_owner
from proxyd.rtsp.oneshot import rtsp_request
from proxyd.rtsp.uri import url_key
from tests.peers.proxyd_proc import free_tcp_port
from tests.proxyd.cache.cluster_nodes import HOSTS, owner_of, start_cluster
from tests.proxyd.cache.helpers import store_bytes, wait_for_log
from tests.proxyd.metrics.scrape import scrape, value

pytestmark = pytest.mark.peers


def play_everywhere(peer_players, nodes: dict, path: str) -> None:
    results = peer_players.ffmpeg_play_all([p.url(path) for p in nodes.values()], transport="tcp", decode=False)
    assert all(r.ok for r in results), [r.describe() for r in results]


def test_each_clip_leaves_the_origin_once_per_cluster(gst_origin, counted_origin, proxyd_process, peer_players,
                                                      tmp_path):
    nodes = start_cluster(proxyd_process, counted_origin.url("/"), tmp_path)
    for clip in ("clip", "changed"):
        play_everywhere(peer_players, nodes, f"/vod/{clip}")
        origin_url = counted_origin.url(clip)
        owner = owner_of(nodes, origin_url)
        for address, node in nodes.items():
            source = f"127.0.0.1:{counted_origin.port}" if address == owner else owner
            wait_for_log(node.log_path, rf"cache: committed {origin_url} ")
            assert wait_for_log(node.log_path, rf"cache: filling {origin_url} .* from {source}$")

    assert [e["uri"] for e in gst_origin.requests("DESCRIBE")] == [
        counted_origin.url("clip"), counted_origin.url("changed")]
    assert gst_origin.session_count("/clip") == gst_origin.session_count("/changed") == 1
    one_copy = store_bytes(tmp_path / f"cache-{HOSTS[0]}")  # both clips, as stored by one node
    assert 0.8 * one_copy < counted_origin.bytes_down < 1.3 * one_copy, (counted_origin.bytes_down, one_copy)


def test_owner_down_the_url_goes_to_its_next_owner(gst_origin, counted_origin, proxyd_process, peer_players,
                                                   tmp_path):
    """The owner is dead: a node asking it leaves it out and asks the URL's next owner over the nodes
    left (which fills from the origin), so the origin still sends the clip once; the next owner's
    own players are served from that copy."""
    origin_url = counted_origin.url("long")
    nodes = start_cluster(proxyd_process, counted_origin.url("/"), tmp_path, "--cluster-connect-timeout", "0.5",
                          killed_owner_of=origin_url)
    owner = owner_of(nodes, origin_url)
    nodes[owner].proc.kill()
    nodes[owner].proc.wait(10)
    next_owner = owner_of([a for a in nodes if a != owner], origin_url)
    third = next(p for a, p in nodes.items() if a not in (owner, next_owner))

    played = peer_players.ffmpeg_play(third.url("/vod/long"), transport="tcp", decode=False)
    assert played.ok, played.describe()
    wait_for_log(third.log_path, rf"cluster: peer {owner} unreachable .* for {origin_url}; asking its next owner "
                                 rf"{next_owner}$")
    wait_for_log(third.log_path, rf"cache: filling {origin_url} .* from {next_owner}$")
    wait_for_log(nodes[next_owner].log_path, rf"cache: filling {origin_url} .* from 127.0.0.1:{counted_origin.port}$")
    wait_for_log(nodes[next_owner].log_path, rf"cache: committed {origin_url} ")
    again = peer_players.ffmpeg_play(nodes[next_owner].url("/vod/long"), transport="tcp", decode=False)
    assert again.ok, again.describe()
    assert len(gst_origin.requests("DESCRIBE")) == 1
    # Left out for --cluster-peer-retry: the next miss it owned goes to its second choice, not a timeout.
    assert rtsp_request(third.url("/vod/clip"), "DESCRIBE", [("Accept", "application/sdp")]).status == 200


def test_a_request_from_a_peer_is_never_forwarded_again(gst_origin_factory, test_clips, proxyd_process, tmp_path):
    """Node A lists B (a bare listener) as its peer. For a URL B owns, a DESCRIBE marked as coming
    from a peer goes to the origin; an unmarked one goes to B (which hangs up: A asks the origin)."""
    origin = gst_origin_factory(vod={f"m{i}": test_clips.main.path for i in range(12)})
    with socket.socket() as b:
        b.bind((HOSTS[1], 0))
        b.listen(4)
        a_port = free_tcp_port(HOSTS[0])
        members = [Peer(HOSTS[0], a_port), Peer(*b.getsockname())]
        owned_by_b = [f"m{i}" for i in range(12)
                      if rendezvous_owner(url_key(origin.url(f"m{i}")), members) == members[1]]
        a = proxyd_process(routes={"/vod": origin.url("/")}, host=HOSTS[0], port=a_port, cache_dir=tmp_path / "cache",
                           extra_args=[f"--cluster-peer={members[1].address}", "--cache-ttl", "300"])

        marked = rtsp_request(a.url(f"/vod/{owned_by_b[0]}"), "DESCRIBE", [(CLUSTER_HEADER, "proxyd")], timeout=8)
        assert marked.status == 200
        b.settimeout(0.5)
        with pytest.raises(TimeoutError):
            b.accept()  # A answered without asking B, so nothing can be on its way

        b.settimeout(10)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            unmarked = pool.submit(rtsp_request, a.url(f"/vod/{owned_by_b[1]}"), "DESCRIBE", (), b"", 8)
            conn, source = b.accept()
            assert source[0] == HOSTS[0]  # peer connections leave from the node's own address
            assert CLUSTER_HEADER.encode() in conn.recv(4096)
            conn.close()
            assert unmarked.result().status == 200
    # the origin's request events arrive from its process asynchronously
    origin.wait_until(lambda events: sum(e["event"] == "request" and e["method"] == "DESCRIBE" for e in events) >= 2)
    assert len(origin.requests("DESCRIBE")) == 2


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_live_content_through_a_node_that_does_not_own_it_plays(gst_origin, proxyd_process, peer_players, tmp_path,
                                                                transport):
    """Not cacheable (no range end): asked of the owner like any miss, then relayed through it, the
    link between the nodes over TCP whatever the player uses (no 3 s UDP wait between them)."""
    nodes = start_cluster(proxyd_process, gst_origin.url("/"), tmp_path)
    owner = owner_of(nodes, gst_origin.url("live"))
    other = next(p for a, p in nodes.items() if a != owner)
    direct = peer_players.ffmpeg_play(nodes[owner].url("/vod/live"), transport=transport, decode=False, duration=3)
    chained = peer_players.ffmpeg_play(other.url("/vod/live"), transport=transport, decode=False, duration=3)
    for played in (direct, chained):  # 3 s from the first packet of either stream: video may join late
        assert played.ok and played.video_frames >= 10, played.describe()
    assert "switching to TCP" not in other.log_path.read_text()


def test_an_owner_refusing_the_origin_sends_the_node_to_the_origin(gst_origin_factory, test_clips, proxyd_process,
                                                                   peer_players, tmp_path):
    """Configuration skew: the owner has no route to that origin (403 to the peer's request), so the
    node asks the origin itself; the owner is not left out for it."""
    origin = gst_origin_factory(vod={f"m{i}": test_clips.main.path for i in range(12)})
    a_port, b_port = free_tcp_port(HOSTS[0]), free_tcp_port(HOSTS[1])
    members = [Peer(HOSTS[0], a_port), Peer(HOSTS[1], b_port)]
    clip = next(f"m{i}" for i in range(12) if rendezvous_owner(url_key(origin.url(f"m{i}")), members) == members[1])
    proxyd_process(routes={}, host=HOSTS[1], port=b_port, extra_args=[f"--cluster-peer={members[0].address}"])
    metrics_port = free_tcp_port()
    a = proxyd_process(routes={"/vod": origin.url("/")}, host=HOSTS[0], port=a_port, cache_dir=tmp_path / "cache",
                       extra_args=[f"--cluster-peer={members[1].address}", "--cache-ttl", "300",
                                   "--metrics-listen", f"127.0.0.1:{metrics_port}"])
    played = peer_players.ffmpeg_play(a.url(f"/vod/{clip}"), transport="tcp", decode=False)  # a fill starts at PLAY
    assert played.ok, played.describe()
    wait_for_log(a.log_path, rf"cluster: peer {members[1].address} answered 403 for {origin.url(clip)}; asking")
    wait_for_log(a.log_path, rf"cache: committed {origin.url(clip)} ")
    assert len(origin.requests("DESCRIBE")) == 1
    samples = scrape(metrics_port)
    assert [value(samples, "proxyd_cluster_peer_requests_total", outcome=o) for o in ("asked", "refused",
                                                                                      "unreachable")] == [1, 1, 0]
