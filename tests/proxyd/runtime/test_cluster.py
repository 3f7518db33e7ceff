"""proxyd.cluster (sans-IO ownership and trust), its flags, the snapshot's cluster section and the
peer route: pure checks (the processes are in tests/proxyd/cache/test_e2e_cluster.py)."""

from __future__ import annotations

import collections

import pytest

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer
from proxyd.app.snapshot_apply import SnapshotApplier
from proxyd.cluster import CLUSTER_HEADER, Membership, Peer, rendezvous_owner
from proxyd.config import Config, ConfigError, parse_route
from proxyd.control.schema import SnapshotError, parse_snapshot
from proxyd.routing import Router, RoutingError, forward_headers
from proxyd.cache.freshness import decide, policy_from_flags
from proxyd.rtsp.events import Headers, Response
from proxyd.split.detect import decide_split, granted_to_peer
from proxyd.wm.cache_control import parse_cache_control

NODES = [Peer("10.0.0.1", 554), Peer("10.0.0.2", 554), Peer("10.0.0.3", 554)]
KEYS = [f"rtsp://origin.example/clip{i}" for i in range(3000)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def membership(me=NODES[0], members=NODES, clock=None) -> Membership:
    m = Membership(peer_retry=30.0, clock=clock or Clock())
    m.configure(me, members, "c1")
    return m


def test_urls_spread_evenly_and_every_node_agrees_on_the_owner():
    owners = collections.Counter(rendezvous_owner(k, NODES).address for k in KEYS)
    assert all(900 < n < 1100 for n in owners.values()), owners
    views = [membership(me) for me in NODES]
    for key in KEYS[:200]:
        picked = {(v.owner(key) or v.me).address for v in views}
        assert len(picked) == 1  # each node names the same owner (itself, or the peer to ask)


def test_a_node_leaving_moves_only_the_urls_it_owned():
    before = {k: rendezvous_owner(k, NODES) for k in KEYS}
    after = {k: rendezvous_owner(k, NODES[:2]) for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == NODES[2] for k in moved)


def owners(view: Membership, keys) -> dict:
    """key -> the address of the node `view` names as its owner (itself included)."""
    return {k: (view.owner(k) or view.me).address for k in keys}


def test_membership_changes_remap_only_the_urls_they_must():
    """Snapshot after snapshot (configure() replaces the member list): a node joining takes about
    1/n of the URLs, each from whichever node had it, and nothing else moves; a node leaving, or shown
    offline, gives away exactly its own URLs, each to the node that would own it without it; the
    order of the list does not matter."""
    fourth = Peer("10.0.0.4", 554)
    view = membership()
    before = owners(view, KEYS)
    view.configure(NODES[0], [fourth, *reversed(NODES)], "c1")  # joins (listed in another order)
    joined = owners(view, KEYS)
    moved = [k for k in KEYS if joined[k] != before[k]]
    assert all(joined[k] == fourth.address for k in moved)
    assert 0.2 * len(KEYS) < len(moved) < 0.3 * len(KEYS), len(moved)

    view.configure(NODES[0], NODES, "c1")  # leaves again: back to the same owners
    assert owners(view, KEYS) == before
    for members in (NODES[:2], [*NODES[:2], Peer("10.0.0.3", 554, online=False)]):
        view.configure(NODES[0], members, "c1")
        after = owners(view, KEYS)
        moved = [k for k in KEYS if after[k] != before[k]]
        assert moved and all(before[k] == NODES[2].address for k in moved)
        assert all(after[k] == rendezvous_owner(k, NODES[:2]).address for k in moved)
        assert len(moved) == sum(owner == NODES[2].address for owner in before.values())


def test_an_unreachable_peer_is_left_out_until_the_retry_time():
    clock = Clock()
    m = membership(clock=clock)
    key = next(k for k in KEYS if rendezvous_owner(k, NODES) == NODES[1])
    assert m.owner(key) == NODES[1]
    m.mark_down(NODES[1])
    assert m.owner(key) in (None, NODES[2])  # its second choice: this node or the third
    assert m.owner(key) == (None if rendezvous_owner(key, [NODES[0], NODES[2]]) == NODES[0] else NODES[2])
    clock.now += 30.0
    assert m.owner(key) == NODES[1]


def test_offline_members_own_nothing_and_this_node_always_counts():
    m = membership(members=[NODES[0], Peer("10.0.0.2", 554, online=False), Peer("10.0.0.3", 554, online=False)])
    assert all(m.owner(k) is None for k in KEYS[:100])
    alone = membership(members=[])
    assert not alone.enabled and alone.owner(KEYS[0]) is None
    off = membership(me=None)
    assert not off.enabled and off.members == ()


def test_trust_needs_our_cluster_id_from_a_member_address():
    m = membership()
    marked = Headers([(CLUSTER_HEADER, "c1")])
    assert m.trusts(marked, "10.0.0.2")
    assert not m.trusts(marked, "10.9.9.9")
    assert not m.trusts(Headers([(CLUSTER_HEADER, "other")]), "10.0.0.2")
    assert not m.trusts(Headers(), "10.0.0.2")
    # a player's mark is never copied upstream: the peer connection adds its own
    assert CLUSTER_HEADER not in forward_headers(marked)


def test_a_trusted_peer_may_name_a_routes_origin_url_and_nothing_else():
    router = Router(Config(routes=(parse_route("/vod=rtsp://origin.example:8600/base"),)))
    target = router.resolve("rtsp://origin.example:8600/base/clip", "127.0.0.1", 8554, peer=True)
    assert (target.origin_url, target.forward) == ("rtsp://origin.example:8600/base/clip", True)
    assert target.to_player(target.origin_url) == target.origin_url  # the peer talks origin URLs
    with pytest.raises(RoutingError):  # outside the route's base
        router.resolve("rtsp://origin.example:8600/other/clip", "127.0.0.1", 8554, peer=True)
    with pytest.raises(RoutingError):  # not a peer: a forward request to an origin not allowed
        router.resolve("rtsp://origin.example:8600/base/clip", "127.0.0.1", 8554)


def test_a_peer_naming_the_origin_url_is_judged_by_the_routes_player_path():
    """--live names players' paths; a peer names the origin URL: the owner maps it back to judge it."""
    router = Router(Config(routes=(parse_route("/vod=rtsp://origin.example:8600/base"),),
                           live_prefixes=("/vod/live",)))

    def resolve(path: str):
        return router.resolve(f"rtsp://origin.example:8600/base/{path}", "127.0.0.1", 8554, peer=True)

    assert resolve("live").live and resolve("live/cam1").live
    assert not resolve("clip").live and not resolve("lively").live


SDP_WITH_DURATION = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=range:npt=0-6\r\n"
                     b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n")


def test_the_owner_splitting_a_url_lets_the_peer_split_it_and_not_cache_it():
    granted = granted_to_peer(None)
    assert decide_split(200, granted, SDP_WITH_DURATION, operator_says_live=False).split
    assert not decide(Response(200, "OK", Headers([("Cache-Control", granted)]), SDP_WITH_DURATION),
                      policy_from_flags(300, 0), live_by_operator=False).cacheable
    kept = parse_cache_control(granted_to_peer('max-age=30, x-wms-stream-type="broadcast"'))
    assert kept.max_age == 30 and kept.stream_types == ("broadcast",) and kept.proxy_split and kept.no_cache
    assert not decide_split(200, granted_to_peer("private"), SDP_WITH_DURATION, operator_says_live=False).split


def test_cluster_flags():
    config = config_from_args(["--listen", "10.0.0.1:554", "--cluster-peer", "10.0.0.2:554",
                               "--cluster-peer", "10.0.0.3"], env={})
    assert config.cluster_self == ("10.0.0.1", 554) and config.cluster_peers == (("10.0.0.2", 554), ("10.0.0.3", 554))
    server = ProxyServer(config)
    assert server.context.cluster.enabled and [p.address for p in server.context.cluster.members] == [
        "10.0.0.1:554", "10.0.0.2:554", "10.0.0.3:554"]
    env = {"PROXYD_LISTEN": "0.0.0.0:554", "PROXYD_CLUSTER_PEER": "10.0.0.2:554,10.0.0.3:554",
           "PROXYD_CLUSTER_SELF": "10.0.0.1:554", "PROXYD_CLUSTER_ID": "edge", "PROXYD_CLUSTER_CONNECT_TIMEOUT": "0.3"}
    config = config_from_args([], env=env)
    assert (config.cluster_self, config.cluster_id, config.limits.cluster_connect_timeout) == (
        ("10.0.0.1", 554), "edge", 0.3)
    with pytest.raises(ConfigError, match="--cluster-self"):  # a wildcard listen address is no address
        config_from_args(["--listen", "0.0.0.0:554", "--cluster-peer", "10.0.0.2:554"], env={})


def cluster_snapshot(cluster: dict):
    return parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "b"}, "cluster": cluster})


def test_the_snapshot_sets_membership_unless_the_command_line_did():
    server = ProxyServer(Config(listen_port=8554))
    applier = SnapshotApplier(server.context, None)
    nodes = [{"name": "a", "address": "10.0.0.1:554", "online": True},
             {"name": "b", "address": "10.0.0.2:554", "online": True},
             {"name": "c", "address": "10.0.0.3:554", "online": False}]
    applier.apply(cluster_snapshot({"enabled": True, "id": "appliance", "nodes": nodes}))
    cluster = server.context.cluster
    assert cluster.enabled and cluster.me == Peer("10.0.0.2", 554) and cluster.cluster_id == "appliance"
    assert [p.address for p in cluster.healthy()] == ["10.0.0.1:554", "10.0.0.2:554"]  # c is offline
    applier.apply(cluster_snapshot({"enabled": False}))
    assert not cluster.enabled
    applier.apply(cluster_snapshot({"enabled": True, "id": "x", "nodes": nodes[:1]}))  # this node unlisted
    assert not cluster.enabled

    flagged = ProxyServer(Config(listen_port=8554, cluster_self=("10.0.0.9", 554), cluster_peers=(("10.0.0.8", 554),)))
    SnapshotApplier(flagged.context, None).apply(cluster_snapshot({"enabled": True, "id": "a", "nodes": nodes}))
    assert [p.address for p in flagged.context.cluster.members] == ["10.0.0.8:554", "10.0.0.9:554"]


def test_a_bad_cluster_section_rejects_the_snapshot():
    with pytest.raises(SnapshotError, match="cluster"):
        cluster_snapshot({"enabled": True, "nodes": []})  # no id
    with pytest.raises(SnapshotError):
        cluster_snapshot({"enabled": True, "id": "a", "nodes": [{"name": "a", "address": 5}]})


def test_member_addresses_are_known_only_with_a_cluster():
    m = membership()
    assert m.is_member_address("10.0.0.3") and not m.is_member_address("10.0.0.9")
    assert not membership(me=None).is_member_address("10.0.0.3")
