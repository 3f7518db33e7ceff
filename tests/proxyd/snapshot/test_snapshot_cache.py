"""SnapshotApplier x cache: per-origin cache policies and prestuff requests from the config snapshot.

Unit tests check what reaches CacheStrategy; the peer tests run an in-process ProxyServer with a
cache directory in front of a real GStreamer origin and play with ffmpeg.
"""

from __future__ import annotations

import asyncio

import pytest

from proxyd.cache.freshness import OriginPolicy
from proxyd.config import Config
from proxyd.control.schema import parse_snapshot
from proxyd.app.server import ProxyServer
from proxyd.app.snapshot_apply import SnapshotApplier
from tests.proxyd.wmext.harness import RecordingSink


def origin(id_, prefix, base, **extra):
    return {"id": id_, "name": f"o{id_}", "route_prefix": prefix, "base_url": base, **extra}


def snapshot(*origins, prestuff=()):
    return parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "n"}, "origins": list(origins),
                           "purges": [], "prestuff": list(prestuff), "terminate_sessions": []})


def test_origin_rows_set_the_cache_policy_per_origin(tmp_path):
    server = ProxyServer(Config(cache_dir=str(tmp_path), cache_ttl=30, stale_if_error=2))
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(
        origin(1, "/a", "rtsp://a.example/base/", cache_policy="force_ttl", cache_ttl=600, stale_if_error=60),
        origin(2, "/b", "rtsp://b.example", cache_policy="never"),
        origin(3, "/c", "rtsp://c.example", cache_policy="force_ttl", cache_ttl=600, live=True),
        origin(4, "/d", "rtsp://d.example")))
    strategy = server.strategies.cache
    assert strategy.policy_for("rtsp://a.example/base/clip") == OriginPolicy("force_ttl", 600, 60)
    assert strategy.policy_for("rtsp://a.example/other") == OriginPolicy("force_ttl", 30, 2)  # not under base
    assert strategy.policy_for("rtsp://b.example/x").policy == "never"
    assert strategy.policy_for("rtsp://c.example/x").policy == "never"  # live origins are never cached
    assert strategy.policy_for("rtsp://d.example/x") == OriginPolicy("obey", 0, 0)  # the row's default wins
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot())
    assert strategy.policy_for("rtsp://b.example/x") == OriginPolicy("force_ttl", 30, 2)  # back to the flags


class RecordingCache:
    """Stands in for CacheStrategy: prestuff(url) fails the first time for each URL listed in `flaky`."""

    store = None  # no purges in these snapshots

    def __init__(self, flaky=()):
        self.calls, self.flaky, self.done = [], set(flaky), asyncio.Event()

    def set_origin_policies(self, origins):
        pass

    async def prestuff(self, url):
        self.calls.append(url)
        self.done.set()
        if url in self.flaky:
            self.flaky.discard(url)
            return False
        return True


async def test_prestuff_starts_once_per_request_and_retries_a_failed_one():
    server = ProxyServer(Config())
    cache = RecordingCache(flaky={"rtsp://o/b"})
    applier = SnapshotApplier(server.context, cache)
    requests = [{"id": 1, "url": "rtsp://o/a"}, {"id": 2, "url": "rtsp://o/b"}]
    applier.apply(snapshot(prestuff=requests))
    await asyncio.gather(*applier.prestuff_tasks)
    applier.apply(snapshot(prestuff=requests))  # 1 is running or done; 2 failed: asked again
    await asyncio.gather(*applier.prestuff_tasks)
    applier.apply(snapshot(prestuff=requests))
    await asyncio.gather(*applier.prestuff_tasks)
    assert cache.calls == ["rtsp://o/a", "rtsp://o/b", "rtsp://o/b"]
    applier.apply(snapshot(prestuff=[]))  # the control plane closed them: ids forgotten
    assert applier.started_prestuff == set()


async def wait_state(sink: RecordingSink, url: str, state: str, timeout: float = 60.0) -> dict:
    def found():
        return next((c for c in sink.of("cache.changed") if c["url"] == url and c["state"] == state), None)

    await sink.wait_for(lambda: found() is not None, timeout=timeout)
    return found()


async def start_proxy(tmp_path, snap) -> tuple[ProxyServer, RecordingSink, SnapshotApplier]:
    sink = RecordingSink()
    server = ProxyServer(Config(listen_port=0, cache_dir=str(tmp_path / "cache")), reporter=sink)
    await server.start()
    applier = SnapshotApplier(server.context, server.strategies.cache)
    applier.apply(snap)
    return server, sink, applier


@pytest.mark.peers
@pytest.mark.parametrize("policy, cached", [("force_ttl", True), ("obey", False)])
async def test_force_ttl_origin_row_makes_a_gstreamer_clip_cacheable(gst_origin, peer_players, tmp_path,
                                                                    policy, cached):
    """GStreamer sends no Cache-Control: only the row's force_ttl (no --cache-ttl) lets it be stored."""
    server, sink, _ = await start_proxy(tmp_path, snapshot(origin(1, "/vod", gst_origin.url("/"),
                                                               cache_policy=policy, cache_ttl=300)))
    url = f"rtsp://127.0.0.1:{server.port}/vod/clip"
    try:
        for _ in range(2):
            result = await asyncio.to_thread(peer_players.ffmpeg_play, url, transport="tcp", decode=False)
            assert result.ok, result.describe()
            if cached:
                stored = await wait_state(sink, gst_origin.url("/clip"), "complete")
    finally:
        await server.stop()
    if cached:
        assert gst_origin.session_count("/clip") == 1  # the second play came from the cache
        assert 299 <= stored_ttl(stored) <= 300
    else:
        assert gst_origin.session_count("/clip") == 2
        assert sink.of("cache.changed") == []


def stored_ttl(changed: dict) -> float:
    from datetime import datetime

    def parse(text):
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    return parse(changed["expires_at"]) - parse(changed["fetched_at"])


@pytest.mark.peers
async def test_prestuffed_clip_plays_from_cache_with_the_origin_stopped(gst_origin, peer_players, test_clips,
                                                                        tmp_path):
    clip_url = gst_origin.url("/clip")
    snap = snapshot(origin(1, "/vod", gst_origin.url("/"), cache_policy="force_ttl", cache_ttl=300),
                    prestuff=[{"id": 3, "url": clip_url}])
    server, sink, applier = await start_proxy(tmp_path, snap)
    try:
        await wait_state(sink, clip_url, "filling", timeout=10)
        await wait_state(sink, clip_url, "complete")
        assert gst_origin.session_count("/clip") == 1  # the fill, no player involved
        applier.apply(snap)  # still pending at the control plane: the same id starts nothing new
        assert applier.prestuff_tasks == set()
        gst_origin.stop()

        result = await asyncio.to_thread(peer_players.ffmpeg_play, f"rtsp://127.0.0.1:{server.port}/vod/clip",
                                         transport="tcp")
    finally:
        await server.stop()
    assert result.ok, result.describe()
    expected = test_clips.main.spec
    assert result.video_frames >= 0.95 * expected.video_frames, result.describe()
    assert result.audio_frames >= 0.95 * expected.audio_frames, result.describe()
    (started,) = sink.of("session.started")
    assert started["served_from"] == "cache"


@pytest.mark.peers
async def test_a_prestuff_on_two_clustered_nodes_leaves_the_origin_once(gst_origin, tmp_path):
    """Both nodes get the prestuff (no node named); the snapshot's cluster makes them one cache:
    the owner fills from the origin, the other through the owner."""
    from proxyd.cluster import Peer, rendezvous_owner
    from proxyd.rtsp.uri import url_key
    from tests.peers.proxyd_proc import free_tcp_port

    clip_url = gst_origin.url("/clip")
    hosts = {"a": "127.0.0.2", "b": "127.0.0.3"}
    ports = {name: free_tcp_port(host) for name, host in hosts.items()}
    members = [{"name": n, "address": f"{hosts[n]}:{ports[n]}", "online": True} for n in hosts]
    nodes = {}
    try:
        for name, host in hosts.items():  # both listening before either is told (an owner down is skipped)
            sink = RecordingSink()
            server = ProxyServer(Config(listen_host=host, listen_port=ports[name],
                                        cache_dir=str(tmp_path / f"cache-{name}")), reporter=sink)
            await server.start()
            nodes[name] = (server, sink)
        for name, (server, _) in nodes.items():
            SnapshotApplier(server.context, server.strategies.cache).apply(parse_snapshot({
                "schema_version": 1, "etag": "e", "node": {"name": name},
                "origins": [origin(1, "/vod", gst_origin.url("/"), cache_policy="force_ttl", cache_ttl=300)],
                "prestuff": [{"id": 3, "url": clip_url}],
                "cluster": {"enabled": True, "id": "c", "nodes": members}}))
        for _, sink in nodes.values():
            await wait_state(sink, clip_url, "complete")
    finally:
        for server, _ in nodes.values():
            await server.stop()
    assert gst_origin.session_count("/clip") == 1
    assert len(gst_origin.requests("DESCRIBE")) == 1
    owner = rendezvous_owner(url_key(clip_url), [Peer(hosts[n], ports[n]) for n in hosts])
    owner_name = next(n for n in hosts if hosts[n] == owner.host)
    other_sink = next(sink for n, (_, sink) in nodes.items() if n != owner_name)
    # the owner saw the other node as one player of the clip, served from its cache or fill
    assert [s["served_from"] for s in nodes[owner_name][1].of("session.started")] in (["cache"], ["origin"])
    assert other_sink.of("session.started") == []
