"""The nodes' internal API served by its own tier: gunicorn gthread workers (deploy/gunicorn-internal.conf.py)
running appliance.wsgi_internal, against the test database (the opt-in tier nginx can route /internal/ to)."""

import asyncio
import json
import os
import urllib.error
import urllib.request

import pytest

from appliance.control.models import ReportEvent
from appliance.playback.models import StreamSession
from tests.appliance.factories import ProxyNodeFactory


def call(url: str, *, token: str | None = None, body: dict | None = None,
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                              **({"Content-Type": "application/json"} if body else {}),
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def internal_server(transactional_db, tmp_path):
    from django.db import connection

    from tests.appliance.ui.web_server import InternalServer

    if connection.vendor != "postgresql":
        pytest.skip("the live internal tier needs PostgreSQL (set DATABASE_URL=postgres://...)")
    server = InternalServer(database=connection.settings_dict, workdir=tmp_path,
                            redis_url=os.environ.get("REDIS_URL")).start()
    yield server
    server.stop()


def report_batch(make_event, sid: str) -> dict:
    events = [make_event("session.started", session_id=sid, url="rtsp://proxy/vod/clip",
                         origin_url="rtsp://127.0.0.1:8600/clip", player_addr="192.0.2.7:5000",
                         user_agent="WMPlayer/12.0", transports=["udp"], served_from="origin"),
              make_event("session.counters", session_id=sid, bytes_out=100, packets_out=2, bytes_in=0,
                         packets_in=0, packets_lost=0, jitter_ms=0.0)]
    return {"schema_version": 1, "events": events,
            "node": {"name": "node-1", "version": "0.1.0", "listen": "127.0.0.1:8554",
                     "load": {"sessions": 1, "bandwidth_bps": 1000}}}


@pytest.mark.django_db(transaction=True)
def test_internal_tier_ingests_a_report_batch_and_answers_snapshot_polls(internal_server, make_event):
    node = ProxyNodeFactory(name="node-1")
    batch = report_batch(make_event, "node-1:wsgi")
    reports = internal_server.url + "/internal/v1/reports"

    status, headers, body = call(reports, token=node.token, body=batch)
    assert (status, json.loads(body)) == (200, {"accepted": 2, "duplicates": 0})
    assert call(reports, token=node.token, body=batch)[2] == b'{"accepted":0,"duplicates":2}'
    assert ReportEvent.objects.filter(node=node).count() == 2
    assert (StreamSession.objects.get().bytes_out, StreamSession.objects.get().packets_out) == (100, 2)
    # The browser-only middleware is left out on this tier: no session or CSRF cookie, no frame header.
    assert "Set-Cookie" not in headers and "X-Frame-Options" not in headers

    snapshot = internal_server.url + "/internal/v1/snapshot"
    status, headers, _ = call(snapshot, token=node.token)
    assert status == 200 and headers["ETag"]
    assert call(snapshot, token=node.token, headers={"If-None-Match": headers["ETag"]})[0] == 304
    assert call(snapshot, token="not-a-node-token")[0] == 401


@pytest.mark.django_db(transaction=True)
def test_internal_tier_serves_nothing_but_the_internal_api(internal_server):
    # Without sessions and CSRF the dashboard, admin and REST API must not be reachable here at all.
    for path in ("/admin/", "/api/v1/origins/", "/login/", "/"):
        assert call(internal_server.url + path)[0] == 404, path
    assert call(internal_server.url + "/healthz")[0] == 200  # the ops probes and this tier's own counters
    status, _, body = call(internal_server.url + "/metrics")
    assert status == 200 and b'appliance_http_requests_total{method="GET",status="404"}' in body


@pytest.mark.django_db(transaction=True)
def test_internal_tier_sends_live_updates_to_the_dashboards_channel_layer(internal_server, make_event):
    # The WSGI workers send on one lasting event loop (appliance/core/background_loop.py): the batch's
    # live update must still reach a dashboard socket's channel in the "live" group, batch after batch.
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis (REDIS_URL) for the channel layer")
    from channels_redis.core import RedisChannelLayer

    from appliance.playback.live import BATCH_MESSAGE_TYPE, LIVE_GROUP

    node = ProxyNodeFactory(name="node-1")
    layer = RedisChannelLayer(hosts=[os.environ["REDIS_URL"]],
                              prefix=internal_server.env["APPLIANCE_CHANNELS_PREFIX"])

    async def post_and_receive(sid: str) -> dict:
        channel = await layer.new_channel()
        await layer.group_add(LIVE_GROUP, channel)
        status, _, _ = await asyncio.to_thread(call, internal_server.url + "/internal/v1/reports",
                                               token=node.token, body=report_batch(make_event, sid))
        assert status == 200
        return await asyncio.wait_for(layer.receive(channel), 30)

    async def two_batches() -> list[dict]:
        try:
            return [await post_and_receive(sid) for sid in ("node-1:a", "node-1:b")]
        finally:
            await layer.flush()

    for message, sid in zip(asyncio.run(two_batches()), ("node-1:a", "node-1:b"), strict=True):
        assert message["type"] == BATCH_MESSAGE_TYPE
        started = [e["payload"] for e in message["events"] if e["event"] == "session.started"]
        assert [p["session_id"] for p in started] == [sid]
