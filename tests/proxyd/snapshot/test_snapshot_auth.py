"""Origin credentials from the control-plane snapshot, against a GStreamer origin that requires a user.

An in-process ProxyServer gets the origin row through SnapshotApplier (as proxyd does with each
snapshot it pulls); ffmpeg plays through it. The origin reports every response it sends (status,
whether the request carried Authorization), so the tests see the challenges and the retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from proxyd.config import Config
from proxyd.control.schema import parse_snapshot
from proxyd.rtsp.oneshot import rtsp_request
from proxyd.app.server import ProxyServer
from proxyd.app.snapshot_apply import SnapshotApplier
from tests.proxyd.wmext.harness import RecordingSink

pytestmark = pytest.mark.peers

USER, PASSWORD = "alice", "pa:ss w0rd-secret"


def origin_row(base_url: str, *, username: str = USER, password: str = PASSWORD, **extra) -> dict:
    return {"id": 1, "name": "auth", "route_prefix": "/a", "base_url": base_url, "username": username,
            "password": password, **extra}


def snapshot(*origins, prestuff=()):
    return parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "n"}, "origins": list(origins),
                           "purges": [], "prestuff": list(prestuff), "terminate_sessions": []})


@contextlib.asynccontextmanager
async def proxy(*rows, config: Config | None = None, prestuff=()):
    server = ProxyServer(config or Config(listen_port=0), reporter=RecordingSink())
    await server.start()
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(*rows, prestuff=prestuff))
    try:
        yield server
    finally:
        await server.stop()


def url_of(server: ProxyServer, path: str, userinfo: str = "") -> str:
    return f"rtsp://{userinfo}127.0.0.1:{server.port}/a/{path.lstrip('/')}"


@pytest.fixture
def proxyd_logs(caplog):
    """Everything proxyd logs (DEBUG and up), to check what never appears in it."""
    logger = logging.getLogger("proxyd")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield caplog
    logger.setLevel(old)
    logger.removeHandler(caplog.handler)


def assert_no_secrets(text: str) -> None:
    assert PASSWORD not in text
    assert "Authorization:" not in text and "Digest username" not in text and "Basic " not in text


@pytest.mark.parametrize("scheme", ["basic", "digest"])
async def test_configured_credentials_play_a_protected_clip(gst_origin_factory, test_clips, peer_players,
                                                            proxyd_logs, scheme):
    origin = gst_origin_factory(vod={"clip": test_clips.main.path}, auth=(scheme, USER, PASSWORD))
    async with proxy(origin_row(origin.url())) as server:
        result = await asyncio.to_thread(peer_players.ffmpeg_play, url_of(server, "clip"), transport="tcp",
                                         decode=False, timeout=30)
    assert result.ok, result.describe()
    assert origin.session_count("/clip") == 1
    # one challenge per origin connection, everything after it authenticated
    answered = origin.responses()
    assert any(e["status"] == 401 and not e["authorization"] for e in answered)
    assert not [e for e in answered if e["status"] == 401 and e["authorization"]]
    assert [e["status"] for e in answered if e["authorization"]].count(200) >= 4  # DESCRIBE, 2 SETUP, PLAY
    assert_no_secrets(proxyd_logs.text)
    assert f"answering as user '{USER}'" in proxyd_logs.text


@pytest.mark.parametrize("scheme, cache", [("basic", False), ("digest", False), ("digest", True)])
async def test_without_credentials_the_player_gets_the_challenge_and_its_own_credentials_go_through(
        gst_origin_factory, test_clips, peer_players, tmp_path, scheme, cache):
    """GStreamer's Digest nonce is valid on the connection that issued it only: the player's answer
    must reach the origin on that connection, past the cache and split strategies."""
    origin = gst_origin_factory(vod={"clip": test_clips.main.path}, auth=(scheme, USER, PASSWORD))
    config = Config(listen_port=0, cache_dir=str(tmp_path / "cache") if cache else "")
    row = origin_row(origin.url(), username="", password="", cache_policy="force_ttl", cache_ttl=60)
    async with proxy(row, config=config) as server:
        challenged = await asyncio.to_thread(rtsp_request, url_of(server, "clip"), "DESCRIBE", timeout=10)
        with_userinfo = url_of(server, "clip", f"{USER}:{PASSWORD}@")
        result = await asyncio.to_thread(peer_players.ffmpeg_play, with_userinfo, transport="tcp",
                                         decode=False, timeout=30)
    assert challenged.status == 401
    challenge = challenged.headers.get("WWW-Authenticate")
    assert challenge.lower().startswith(scheme) and 'realm="gst-origin"' in challenge
    assert result.ok, result.describe()
    assert origin.session_count("/clip") == 1
    assert server.context.reporter.of("cache.changed") == []  # what a player's own credentials fetched is not stored


async def test_a_wrong_password_gives_the_player_401_once_per_request(gst_origin_factory, test_clips,
                                                                      peer_players, proxyd_logs):
    origin = gst_origin_factory(vod={"clip": test_clips.main.path}, auth=("digest", USER, PASSWORD))
    async with proxy(origin_row(origin.url(), password="wrong-" + PASSWORD)) as server:
        mark = origin.mark()
        refused = await asyncio.to_thread(rtsp_request, url_of(server, "clip"), "DESCRIBE", timeout=10)
        asked = origin.responses(after=mark)
        played = await asyncio.to_thread(peer_players.ffmpeg_play, url_of(server, "clip"), transport="tcp",
                                         decode=False, timeout=30)
    assert refused.status == 401 and refused.headers.get("WWW-Authenticate", "").startswith("Digest")
    # the origin was asked twice: without credentials, then with the (wrong) configured ones
    assert [(e["status"], e["authorization"]) for e in asked] == [(401, False), (401, True)]
    assert not played.ok and not played.timed_out, played.describe()
    assert origin.session_count() == 0
    assert "401 (rejected)" in proxyd_logs.text
    assert_no_secrets(proxyd_logs.text.replace("wrong-", ""))


async def test_a_cache_fill_and_prestuff_authenticate(gst_origin_factory, test_clips, peer_players, tmp_path):
    origin = gst_origin_factory(vod={"clip": test_clips.main.path, "other": test_clips.changed.path},
                                auth=("digest", USER, PASSWORD))
    row = origin_row(origin.url(), cache_policy="force_ttl", cache_ttl=300)
    config = Config(listen_port=0, cache_dir=str(tmp_path / "cache"))
    async with proxy(row, config=config, prestuff=[{"id": 1, "url": origin.url("/other")}]) as server:
        sink = server.context.reporter

        def stored(url):
            return any(c["url"] == url and c["state"] == "complete" for c in sink.of("cache.changed"))

        for _ in range(2):  # a player's miss fills; the second play is a hit
            result = await asyncio.to_thread(peer_players.ffmpeg_play, url_of(server, "clip"),
                                             transport="tcp", decode=False, timeout=30)
            assert result.ok, result.describe()
            await sink.wait_for(lambda: stored(origin.url("/clip")), timeout=60)
        await sink.wait_for(lambda: stored(origin.url("/other")), timeout=60)
    assert origin.session_count("/clip") == 1
    assert origin.session_count("/other") == 1


async def test_a_protected_live_stream_is_split_with_configured_credentials(gst_origin_factory, peer_players):
    origin = gst_origin_factory(live="live", auth=("basic", USER, PASSWORD))
    config = Config(listen_port=0, live_prefixes=("/a/live",))
    async with proxy(origin_row(origin.url()), config=config) as server:
        mark = origin.mark()
        with ThreadPoolExecutor(max_workers=2) as pool:
            plays = [pool.submit(peer_players.ffmpeg_play, url_of(server, "live"), transport=t, duration=3,
                                 decode=False, timeout=40) for t in ("tcp", "udp")]
            results = await asyncio.to_thread(lambda: [f.result() for f in plays])
    for result in results:
        assert result.ok, result.describe()
    assert origin.session_count("/live", after=mark) == 1  # one shared, authenticated origin session


async def test_a_split_of_a_protected_live_stream_survives_an_origin_restart(gst_origin_factory,
                                                                              peer_players):
    origin = gst_origin_factory(live="live", auth=("basic", USER, PASSWORD))
    config = Config(listen_port=0, live_prefixes=("/a/live",))
    async with proxy(origin_row(origin.url()), config=config) as server:
        play = asyncio.get_running_loop().run_in_executor(
            None, lambda: peer_players.ffmpeg_play(url_of(server, "live"), transport="tcp", duration=14,
                                                   decode=False, timeout=60))
        await asyncio.to_thread(origin.wait_for, lambda e: e["event"] == "session-created", 20)
        mark = origin.mark()
        await asyncio.to_thread(origin.restart)
        # the hub's reconnect authenticates: a new origin session at the restarted origin
        await asyncio.to_thread(origin.wait_for, lambda e: e["event"] == "session-created", 20, after=mark)
        result = await play
    assert result.ok, result.describe()
