"""Three proxyd nodes (127.0.0.2, .3, .4) against one live Django, PostgreSQL, Redis and a real Celery
worker with beat: ffmpeg plays through each node, every node's reports arrive exactly once, an
origin assignment change, a purge and a terminate reach the right nodes, and a node that stops
reporting is shown offline with its session and split closed as lost."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from tests.appliance.tasks.harness import CeleryWorker, database_url_of, redis_url_with_db
from tests.e2e.conftest import POLL_S, wait_until
from tests.proxyd.split.conftest import LIVE

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]

NODES = {"node-a": "127.0.0.2", "node-b": "127.0.0.3", "node-c": "127.0.0.4"}
OFFLINE_AFTER_S = 3  # the worker's APPLIANCE_NODE_OFFLINE_SECONDS; snapshots are polled every POLL_S
LIVE_PLAY_TIMEOUT_S = 90


@pytest.fixture
def beat_worker(live_server, tmp_path):
    """A Celery worker + beat on the test database that checks for lost nodes every second."""
    from django.db import connection

    redis = pytest.importorskip("redis")
    broker = redis_url_with_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                               int(os.environ.get("APPLIANCE_TEST_CELERY_REDIS_DB", "11")))
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {broker}: {exc}")
    queue = f"test-multinode-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "appliance.settings",
           "DATABASE_URL": database_url_of(connection.settings_dict), "APPLIANCE_DB_CONN_MAX_AGE": "0",
           "REDIS_URL": broker, "APPLIANCE_CELERY_QUEUE": queue, "APPLIANCE_VAR_DIR": str(tmp_path / "var"),
           "APPLIANCE_NODE_OFFLINE_SECONDS": str(OFFLINE_AFTER_S), "APPLIANCE_NODE_CHECK_INTERVAL": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    worker = CeleryWorker(env=env, workdir=tmp_path).start()
    yield worker
    worker.stop()
    redis.Redis.from_url(broker).delete(queue, f"_kombu.binding.{queue}")


@pytest.fixture
def nodes(live_server, transactional_db, proxyd_process, tmp_path):
    """start(name, **kwargs) -> a proxyd on its own loopback address, reporting as that node."""
    from tests.appliance.factories import ProxyNodeFactory

    def start(name: str, **kwargs):
        node = ProxyNodeFactory(name=name)
        token_file = tmp_path / f"{name}.token"
        token_file.write_text(node.token + "\n")
        args = ["--control-url", live_server.url, "--control-token-file", str(token_file), "--node-name", name,
                "--state-dir", str(tmp_path / f"{name}-state"), "--control-poll-interval", str(POLL_S),
                "--counters-interval", "1", "--cache-dir", str(tmp_path / f"{name}-cache")]
        return proxyd_process(routes={}, host=NODES[name], extra_args=args,
                              log_path=tmp_path / f"proxyd-{name}.log", **kwargs)

    return start


def describe_status(url: str) -> int:
    from proxyd.rtsp.oneshot import rtsp_request

    return rtsp_request(url, "DESCRIBE", [("Accept", "application/sdp")], timeout=5).status


def wait_statuses(proxies: dict, path: str, expected: dict[str, int], what: str) -> None:
    wait_until(lambda: {n: describe_status(p.url(path)) for n, p in proxies.items()} == expected,
               timeout=30, what=what)


def test_three_nodes_play_report_once_follow_changes_and_a_silent_node_is_closed_as_lost(
        api, live_server, nodes, beat_worker, gst_origin, gst_origin_factory, peer_players, settings):
    from appliance.content.models import CachedContent, PurgeRequest
    from appliance.control.models import ReportEvent

    settings.APPLIANCE_NODE_OFFLINE_SECONDS = OFFLINE_AFTER_S  # the web side (live_server) as the worker
    live_origin = gst_origin_factory(live="live", live_options=LIVE)
    node_a, node_b = nodes("node-a"), nodes("node-b")
    node_c = nodes("node-c", expect_clean_exit=False)  # killed below
    proxies = {"node-a": node_a, "node-b": node_b, "node-c": node_c}
    for body in ({"name": "vod", "base_url": gst_origin.url(), "route_prefix": "/vod", "transport": "tcp",
                  "cache_policy": "force_ttl", "cache_ttl": 600},
                 {"name": "tv", "base_url": live_origin.url(), "route_prefix": "/tv", "transport": "tcp",
                  "live": True, "nodes": ["node-b", "node-c"]},
                 # same origin server as "vod", so the same cache policy (a node applies one per origin URL)
                 {"name": "extra", "base_url": gst_origin.url(), "route_prefix": "/x", "nodes": ["node-a"],
                  "cache_policy": "force_ttl", "cache_ttl": 600}):
        status, created = api.post("/api/v1/origins/", body)
        assert status == 201, created

    # Assignment: /x only on node-a, /tv only on node-b and node-c; then /x moves to node-c.
    wait_statuses(proxies, "/x/clip", {"node-a": 200, "node-b": 404, "node-c": 404}, "/x on node-a only")
    wait_statuses(proxies, "/tv/live", {"node-a": 404, "node-b": 200, "node-c": 200}, "/tv on b and c")
    extra = next(o for o in api.get("/api/v1/origins/")["results"] if o["name"] == "extra")
    status, _ = api.call("PATCH", f"/api/v1/origins/{extra['id']}/", {"nodes": ["node-c"]})
    assert status == 200
    wait_statuses(proxies, "/x/clip", {"node-a": 404, "node-b": 404, "node-c": 200}, "/x moved to node-c")

    # ffmpeg through every node at once: each node fills its cache and reports concurrently.
    results = peer_players.ffmpeg_play_all([p.url("/vod/clip") for p in proxies.values()], transport="tcp",
                                           decode=False)
    assert all(r.ok for r in results), [r.describe() for r in results]
    clip = gst_origin.url("clip")
    wait_until(lambda: CachedContent.objects.filter(url=clip, state="complete").count() == 3, timeout=30,
               what="every node's cached copy reported complete")
    vod_sessions = wait_until(lambda: (rows := [s for s in api.get("/api/v1/sessions/?url=/vod/clip")["results"]
                                                if s["ended_at"]]) and len(rows) == 3 and rows,
                              timeout=20, what="three ended /vod sessions")
    assert sorted(s["node"] for s in vod_sessions) == sorted(NODES)
    assert all(s["end_reason"] == "teardown" and s["packets_out"] > 0 for s in vod_sessions)
    for name in NODES:
        seqs = list(ReportEvent.objects.filter(node__name=name).values_list("seq", flat=True))
        assert len(seqs) == len(set(seqs)) == max(seqs) - min(seqs) + 1, f"{name}: gap or duplicate in {seqs}"

    # A purge reaches every node holding the clip and is done only when all of them purged it.
    status, purge = api.post("/api/v1/content/purge/", {"url": clip, "prefix": False})
    assert status == 202, purge
    wait_until(lambda: PurgeRequest.objects.get(pk=purge["id"]).state == "done", timeout=20,
               what="the purge to complete on every node")
    assert set(CachedContent.objects.filter(url=clip).values_list("node__name", "state")) == {
        (n, "purged") for n in NODES}

    # Live through node-b and node-c (one split each); a terminate ends node-b's player only.
    live = {}
    live_players = [threading.Thread(target=lambda n=n: live.update(
        {n: peer_players.ffmpeg_play(proxies[n].url("/tv/live"), transport="tcp", decode=False,
                                     timeout=LIVE_PLAY_TIMEOUT_S)})) for n in ("node-b", "node-c")]
    for player in live_players:
        player.start()
    try:
        def live_by_node():
            rows = api.get("/api/v1/sessions/?live=true")["results"]
            by_node = {s["node"]: s for s in rows if s["url"].endswith("/tv/live")}
            return by_node if set(by_node) == {"node-b", "node-c"} else None

        sessions = wait_until(live_by_node, timeout=30, what="live sessions on node-b and node-c")
        wait_until(lambda: {s["node"] for s in api.get("/api/v1/splits/?live=true")["results"]} == {
            "node-b", "node-c"}, timeout=20, what="a live split on node-b and node-c")
        status, _ = api.post(f"/api/v1/sessions/{sessions['node-b']['id']}/terminate/")
        assert status == 202
        live_players[0].join(20)
        assert not live_players[0].is_alive(), "node-b's player still playing after terminate"
        ended = wait_until(lambda: (r := api.get(f"/api/v1/sessions/{sessions['node-b']['id']}/"))["ended_at"] and r,
                           timeout=10, what="node-b's session to end")
        assert ended["end_reason"] == "terminated"
        assert api.get(f"/api/v1/sessions/{sessions['node-c']['id']}/")["ended_at"] is None

        # node-c dies without a word: beat shows it offline and closes its session and split as lost.
        node_c.proc.kill()
        node_c.proc.wait(10)

        def offline():
            rows = {n["name"]: n["online"] for n in api.get("/api/v1/nodes/")["results"]}
            return rows if rows == {"node-a": True, "node-b": True, "node-c": False} else None

        wait_until(offline, timeout=OFFLINE_AFTER_S + 15, what="node-c offline, the others online")
        lost = wait_until(lambda: (r := api.get(f"/api/v1/sessions/{sessions['node-c']['id']}/"))["ended_at"] and r,
                          timeout=15, what="node-c's session closed")
        assert lost["end_reason"] == "node_lost"
        # (the DESCRIBE probes above started and lingered out splits of their own)
        [split] = wait_until(lambda: [s for s in api.get("/api/v1/splits/?end_reason=node_lost")["results"]],
                             timeout=15, what="node-c's split closed as lost")
        assert split["node"] == "node-c" and split["state"] == "ended" and split["players"] == 0
        assert "node-c" not in {s["node"] for s in api.get("/api/v1/splits/?live=true")["results"]}
    finally:
        for player in live_players:
            player.join(LIVE_PLAY_TIMEOUT_S + 5)


def test_the_snapshot_makes_three_nodes_one_cache(api, live_server, nodes, gst_origin, peer_players, settings,
                                                  tmp_path):
    """APPLIANCE_CLUSTER_CACHE on: every node learns the members from its snapshot, the clip's owner
    (by that membership) fills it from the origin, the two others through the owner."""
    from appliance.content.models import CachedContent
    from appliance.nodes.models import ProxyNode
    from proxyd.cluster import Peer, rendezvous_owner
    from proxyd.rtsp.uri import url_key
    from tests.peers.tcp_forward import CountingForwarder
    from tests.proxyd.cache.helpers import store_bytes, wait_for_log

    settings.APPLIANCE_CLUSTER_CACHE = True
    proxies = {name: nodes(name) for name in NODES}
    for name, proxy in proxies.items():  # the address peers use, as an operator sets it
        ProxyNode.objects.filter(name=name).update(rtsp_address=f"{proxy.host}:{proxy.port}")
    with CountingForwarder(0, (gst_origin.host, gst_origin.port)) as origin:
        status, created = api.post("/api/v1/origins/", {
            "name": "vod", "base_url": origin.url("/"), "route_prefix": "/vod", "transport": "tcp",
            "cache_policy": "force_ttl", "cache_ttl": 600})
        assert status == 201, created
        members = r"\[" + ", ".join([r"\('[\d.:]+', True\)"] * 3) + r"\]"
        for proxy in proxies.values():
            wait_for_log(proxy.log_path, rf"cache cluster appliance: self {proxy.host}:{proxy.port}, members {members}")
            # and the route (it may come in a later snapshot than the members): an owner without it
            # refuses its peers' requests (403) and they ask the origin themselves
            wait_for_log(proxy.log_path, r"routes now \[.*'/vod=rtsp://")
        wait_statuses(proxies, "/vod/clip", dict.fromkeys(NODES, 200), "/vod on every node")
        # the probes above (DESCRIBEs nobody plays: no fill) reached the origin once for the three nodes
        gst_origin.wait_until(lambda events: any(e["event"] == "request" for e in events))
        assert len(gst_origin.requests("DESCRIBE")) == 1, "the probes of one clip reached the origin once"

        results = peer_players.ffmpeg_play_all([p.url("/vod/changed") for p in proxies.values()],
                                               transport="tcp", decode=False)
        assert all(r.ok for r in results), [r.describe() for r in results]
        changed = origin.url("changed")
        owner = rendezvous_owner(url_key(changed), [Peer(p.host, p.port) for p in proxies.values()])
        for proxy in proxies.values():
            source = f"127.0.0.1:{origin.port}" if proxy.port == owner.port else owner.address
            wait_for_log(proxy.log_path, rf"cache: filling {changed} .* from {source}$")
        gst_origin.wait_until(lambda events: sum(e["event"] == "request" and e["method"] == "DESCRIBE"
                                                 for e in events) >= 2)
        assert len(gst_origin.requests("DESCRIBE")) == 2
        wait_until(lambda: CachedContent.objects.filter(url=changed, state="complete").count() == 3,
                   timeout=30, what="every node's copy of the played clip reported complete")
        one_copy = store_bytes(tmp_path / "node-a-cache")
        assert 0.8 * one_copy < origin.bytes_down < 1.3 * one_copy, (origin.bytes_down, one_copy)
