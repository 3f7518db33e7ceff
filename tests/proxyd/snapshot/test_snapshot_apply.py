"""SnapshotApplier: routes, transport preference, terminations and purges from the config snapshot.

Routing is checked on a real ProxyServer's router and, in the peer test, by DESCRIBE through a
running in-process proxy against a real GStreamer origin.
"""

import asyncio

import pytest

from proxyd.config import Config, ControlSettings, parse_route
from proxyd.control.schema import parse_snapshot
from proxyd.routing import RoutingError
from proxyd.rtsp.oneshot import rtsp_request
from proxyd.app.server import ProxyServer
from proxyd.app.snapshot_apply import SnapshotApplier, merge_routes, snapshot_routes


def origin(id_, prefix, base, **extra):
    return {"id": id_, "name": f"o{id_}", "route_prefix": prefix, "base_url": base, **extra}


def snapshot(*origins, purges=(), terminate=()):
    return parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "n"},
                           "origins": list(origins), "purges": list(purges),
                           "terminate_sessions": list(terminate)})


def resolve(server, path):
    return server.context.router.resolve(f"rtsp://127.0.0.1:8554{path}", "127.0.0.1", 8554)


def test_allowed_origins_become_routes_and_bad_rows_are_skipped():
    snap = snapshot(origin(1, "/vod", "rtsp://a.example:8600/base", transport="tcp"),
                    origin(2, "/off", "rtsp://b.example/", allowed=False),
                    origin(3, "/bad", "http://c.example/"),
                    origin(4, "/vod", "rtsp://dup.example/"),
                    origin(5, "/live/", "rtsp://d.example:554", transport="auto"))
    routes, transports = snapshot_routes(snap.origins)
    assert [(r.prefix, r.origin_url) for r in routes] == [("/vod", "rtsp://a.example:8600/base"),
                                                         ("/live", "rtsp://d.example:554")]
    assert transports == {"/vod": "tcp"}  # auto defers to --origin-transport


def test_cli_routes_win_over_snapshot_routes_with_the_same_prefix():
    cli = (parse_route("/vod=rtsp://cli.example:554"),)
    merged = merge_routes(cli, [parse_route("/vod=rtsp://cp.example:554"), parse_route("/x=rtsp://x:554")])
    assert [r.origin_url for r in merged] == ["rtsp://cli.example:554", "rtsp://x:554"]


def test_applier_swaps_the_router_and_removes_disallowed_routes():
    server = ProxyServer(Config(listen_port=8554, routes=(parse_route("/cli=rtsp://cli.example:554"),)))
    applier = SnapshotApplier(server.context, server.strategies.cache)
    with pytest.raises(RoutingError):
        resolve(server, "/vod/clip")
    applier.apply(snapshot(origin(1, "/vod", "rtsp://a.example:8600/base", transport="udp"),
                           origin(2, "/cli", "rtsp://cp.example:554", transport="tcp")))
    target = resolve(server, "/vod/clip")
    assert (target.origin_url, target.transport) == ("rtsp://a.example:8600/base/clip", "udp")
    cli_target = resolve(server, "/cli/x")
    assert (cli_target.origin_host, cli_target.transport) == ("cli.example", "")
    applier.apply(snapshot(origin(1, "/vod", "rtsp://a.example:8600/base", allowed=False)))
    with pytest.raises(RoutingError) as excinfo:
        resolve(server, "/vod/clip")
    assert excinfo.value.status == 404
    assert resolve(server, "/cli/x").origin_host == "cli.example"  # CLI routes always stay


class RecordingSession:
    def __init__(self, session_id, player):
        self.id, self.player, self.closed_with = session_id, player, None
        player.sessions[session_id] = self

    def close(self, reason, detail=""):
        self.closed_with = reason
        self.player.sessions.pop(self.id, None)


class RecordingPlayer:
    def __init__(self):
        self.sessions, self.closed = {}, None

    def close_connection(self, why):
        self.closed = why


def test_terminate_sessions_closes_listed_sessions_and_lone_player_connections():
    server = ProxyServer(Config())
    shared, alone = RecordingPlayer(), RecordingPlayer()
    a, b, c = RecordingSession("a", shared), RecordingSession("b", shared), RecordingSession("c", alone)
    server.sessions.update({"a": a, "b": b, "c": c})
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(terminate=["a", "c", "not-here"]))
    assert (a.closed_with, b.closed_with, c.closed_with) == ("terminated", None, "terminated")
    assert shared.closed is None  # still carries session b
    assert alone.closed is not None


class RecordingStore:
    def __init__(self, fail_first=False):
        self.calls, self.fail_first = [], fail_first

    def purge(self, url=None, prefix=None):  # proxyd.cache.store.CacheStore.purge's signature
        self.calls.append((url, prefix))
        if self.fail_first and len(self.calls) == 1:
            raise OSError("disk gone")


class StoreOnly:
    """Stands in for CacheStrategy: purges use its store; policies and prestuff are not exercised."""

    def __init__(self, store):
        self.store = store

    def set_origin_policies(self, origins):
        pass


def test_purges_reach_the_cache_store_once_per_request_and_failures_retry():
    server = ProxyServer(Config())
    store = RecordingStore(fail_first=True)
    applier = SnapshotApplier(server.context, StoreOnly(store))
    purges = [{"id": 7, "url": "rtsp://o/clip", "prefix": False}, {"id": 8, "url": "rtsp://o/dir", "prefix": True}]
    applier.apply(snapshot(purges=purges))
    applier.apply(snapshot(purges=purges))
    assert store.calls == [("rtsp://o/clip", None), (None, "rtsp://o/dir"), ("rtsp://o/clip", None)]


def test_without_a_cache_store_purges_are_a_no_op():
    server = ProxyServer(Config())
    assert server.strategies.cache is None
    applier = SnapshotApplier(server.context, server.strategies.cache)
    first = {"id": 1, "url": "rtsp://o/clip", "prefix": False}
    applier.apply(snapshot(origin(1, "/vod", "rtsp://a.example:554/"), purges=[first]))
    assert resolve(server, "/vod/clip").origin_url == "rtsp://a.example:554/clip"  # the rest still applied
    # Nothing of that URL is stored on a node without a cache: the purge is done, not kept pending.
    assert applier.done_purges == {1}


def test_a_cache_in_proxyd_is_reachable_for_purges(tmp_path):
    """A node with a cache directory must offer purge() somewhere, or purges would be lost."""
    server = ProxyServer(Config(cache_dir=str(tmp_path)))
    assert server.strategies.cache is not None and callable(server.strategies.cache.store.purge)


@pytest.mark.peers
async def test_snapshot_route_serves_describe_from_a_real_origin(shared_gst_origin):
    server = ProxyServer(Config(listen_port=0, control=ControlSettings()))
    await server.start()
    try:
        url = f"rtsp://127.0.0.1:{server.port}/cp/clip"
        before = await asyncio.to_thread(rtsp_request, url, "DESCRIBE", timeout=10)
        SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(origin(1, "/cp", shared_gst_origin.url())))
        after = await asyncio.to_thread(rtsp_request, url, "DESCRIBE", timeout=10)
    finally:
        await server.stop()
    assert before.status == 404
    assert after.status == 200 and b"m=video" in after.body


@pytest.mark.peers
@pytest.mark.parametrize("preference, plays", [("tcp", True), ("auto", False)])
async def test_origin_transport_preference_overrides_the_global_flag(gst_origin_factory, test_clips,
                                                                     peer_players, preference, plays):
    """Global --origin-transport udp against a TCP-only origin: only the origin's tcp preference plays."""
    tcp_only = gst_origin_factory(vod={"clip": test_clips.main.path}, protocols="tcp")
    server = ProxyServer(Config(listen_port=0, origin_transport="udp"))
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(origin(1, "/t", tcp_only.url(), transport=preference)))
    await server.start()
    try:
        result = await asyncio.to_thread(peer_players.ffmpeg_play, f"rtsp://127.0.0.1:{server.port}/t/clip",
                                         transport="tcp", timeout=30)
    finally:
        await server.stop()
    assert result.ok is plays, result.describe()


def test_player_access_rides_on_the_route_and_an_unusable_row_is_not_served():
    from proxyd.control.schema import SnapshotError
    from proxyd.rtsp.auth import digest_ha1

    md5, sha = digest_ha1("MD5", "alice", "M", "pw"), digest_ha1("SHA-256", "alice", "M", "pw")
    users = [{"username": "alice", "md5": md5, "sha256": sha}]
    snap = snapshot(origin(1, "/members", "rtsp://a.example/m", player_access="digest", player_realm="M",
                           player_users=users),
                    origin(2, "/nobody", "rtsp://a.example/n", player_access="basic", player_realm="M"),
                    origin(3, "/short", "rtsp://a.example/s", player_access="digest", player_realm="M",
                           player_users=[{"username": "bob", "md5": "abc"}]),
                    origin(4, "/open", "rtsp://a.example/o"))
    assert "pw" not in repr(snap) and md5 not in repr(snap)
    routes = {r.prefix: r for r in snapshot_routes(snap.origins)[0]}
    assert sorted(routes) == ["/members", "/open"]  # no users / a bad hash: fail closed, not open
    policy = routes["/members"].player_auth
    assert (policy.mode, policy.realm) == ("digest", "M")
    assert policy.users == {"alice": {"MD5": md5, "SHA-256": sha}}
    assert routes["/open"].player_auth is None
    with pytest.raises(SnapshotError):
        snapshot(origin(5, "/x", "rtsp://a.example/x", player_access="ntlm"))
