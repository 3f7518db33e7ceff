"""Dashboard websocket through the real ASGI stack (origin check, session auth, routing, consumer)."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, transaction
from django.test import Client

from appliance.asgi import application
from appliance.playback import live
from tests.appliance.ui.websocket_client import WebsocketClient

pytestmark = pytest.mark.django_db(transaction=True)

SESSION = {"node": "node-1", "session_id": "s-1", "url": "rtsp://proxy/vod/clip", "served_from": "cache",
           "player_addr": "127.0.0.1:5000", "started_at": "2026-11-25T12:00:00+00:00", "ended_at": None,
           "bytes_out": 0}


@pytest.fixture(autouse=True)
async def close_worker_thread_connections():
    # DB work done through sync_to_async runs on one shared thread; close its connection so the
    # test database can be dropped at the end of the run.
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture(params=["memory", "redis"])
def channel_layer(request, settings):
    if request.param == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        redis = pytest.importorskip("redis")
        url = settings.REDIS_URL or "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            pytest.skip(f"Redis not reachable: {exc}")
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                               "CONFIG": {"hosts": [url], "prefix": f"test-{uuid.uuid4().hex[:8]}"}}}
    return request.param


def session_cookie(username: str, group: str | None) -> bytes:
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username, password="pw")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def socket(cookie: bytes | None = None, origin: bytes = b"http://testserver") -> WebsocketClient:
    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketClient(application, "/ws/live/", headers=headers)


async def test_anonymous_socket_is_closed_with_the_login_code(channel_layer):
    connected, code = await socket().connect()
    assert not connected and code == 4401


async def test_logged_in_user_without_a_role_is_refused(channel_layer):
    # The dashboard answers this user 403; the feed (player addresses) must not be any more open.
    cookie = await sync_to_async(session_cookie)("nora", None)
    connected, code = await socket(cookie).connect()
    assert not connected and code == 4403


async def test_superuser_without_a_group_is_let_in(channel_layer):
    def superuser_cookie() -> bytes:
        from django.contrib.auth.models import User

        User.objects.create_superuser("root", password="pw")
        client = Client()
        client.force_login(User.objects.get(username="root"))
        return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()

    communicator = socket(await sync_to_async(superuser_cookie)())
    assert (await communicator.connect())[0]
    await communicator.disconnect()


async def test_foreign_origin_is_refused(channel_layer):
    cookie = await sync_to_async(session_cookie)("vera", "viewer")
    connected, _ = await socket(cookie, origin=b"https://evil.example").connect()
    assert not connected


async def test_viewer_receives_events_published_after_commit(channel_layer):
    cookie = await sync_to_async(session_cookie)("vera", "viewer")
    communicator = socket(cookie)
    connected, _ = await communicator.connect()
    assert connected

    def publish_in_a_transaction():
        with transaction.atomic():
            live.publish("session.started", SESSION)

    await sync_to_async(publish_in_a_transaction)()
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"event": "session.started", "payload": SESSION}
    await communicator.disconnect()


async def test_report_batches_events_reach_the_viewer_in_order_through_the_servers_loop(channel_layer):
    """A report batch's events (publish_many) are handed to the server's event loop, sent together with
    other requests' events within APPLIANCE_LIVE_COALESCE_MS: each arrives once, in commit order."""
    cookie = await sync_to_async(session_cookie)("vera", "viewer")
    communicator = socket(cookie)
    assert (await communicator.connect())[0]
    ended = {**SESSION, "ended_at": "2026-11-25T12:01:00+00:00"}
    load = {"node": "node-1", "sessions": 0, "bandwidth_bps": 0}

    def batch(events):
        with transaction.atomic():
            live.publish_many(events)

    await sync_to_async(batch)([("session.started", SESSION), ("node.bandwidth", load)])
    await sync_to_async(batch)([("session.ended", ended)])
    received = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
    assert received == [{"event": "session.started", "payload": SESSION},
                        {"event": "node.bandwidth", "payload": load}, {"event": "session.ended", "payload": ended}]
    await communicator.disconnect()


async def test_nothing_is_sent_when_the_transaction_rolls_back(channel_layer):
    cookie = await sync_to_async(session_cookie)("vera", "viewer")
    communicator = socket(cookie)
    assert (await communicator.connect())[0]

    def publish_then_roll_back():
        try:
            with transaction.atomic():
                live.publish("session.ended", {**SESSION, "session_id": "rolled-back"})
                raise RuntimeError("abort")
        except RuntimeError:
            pass
        live.publish("cache.hit_ratio", {"ratio": 0.5, "ratio_requests": 0.5, "cache_bytes_out": 1,
                                         "bytes_out": 2, "window_seconds": 60})

    await sync_to_async(publish_then_roll_back)()
    message = await communicator.receive_json_from(timeout=5)
    assert message["event"] == "cache.hit_ratio"  # the rolled-back event never arrived before it
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_socket_is_read_only(channel_layer):
    cookie = await sync_to_async(session_cookie)("otto", "operator")
    communicator = socket(cookie)
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"event": "session.ended", "payload": SESSION})
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


def test_publish_rejects_unknown_events_and_incomplete_payloads():
    with pytest.raises(ValueError):
        live.publish("session.exploded", SESSION)
    with pytest.raises(ValueError):
        live.publish("node.bandwidth", {"node": "n"})
