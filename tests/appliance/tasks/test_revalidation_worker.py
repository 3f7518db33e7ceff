"""Content revalidation run by a real Celery worker (the beat task queued by the test) against real RTSP origins.

DESCRIBE path: the GStreamer origin (tests/peers/gst_origin.py), restarted on the same port with a
different clip to play "the origin replaced the content". GetContentInfo path: the scripted responder.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState
from appliance.nodes.models import ProxyNode
from appliance.origins.models import Origin
from proxyd.rtsp.oneshot import rtsp_request
from tests.appliance.tasks.worker_fixtures import PROXY_GUID
from tests.appliance.tasks.harness import GstOrigin, wait_until
from tests.appliance.tasks.rtsp_responder import Reply
from tests.peers import media

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

ORIGIN_CACHE_CONTROL = "public, max-age=3600"
GCI = "application/x-wms-getcontentinfo"
REVALIDATE_DUE = "content.revalidate_due"  # queued by each test at once (beat every 5 s retries)


def reload(row: CachedContent) -> CachedContent:
    return CachedContent.objects.get(pk=row.pk)


def cached_row(*, origin: Origin, url: str, expires_in: float, **fields) -> CachedContent:
    now = timezone.now()
    node, _ = ProxyNode.objects.get_or_create(name="node-1", defaults={"token_hash": "0" * 64})
    return CachedContent.objects.create(node=node, origin=origin, url=url, state=ContentState.COMPLETE,
                                        fetched_at=now - dt.timedelta(hours=1),
                                        expires_at=now + dt.timedelta(seconds=expires_in), **fields)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    try:
        cache = media.default_cache_dir()
        return (media.make_clip(media.ClipSpec(duration_s=3), cache),
                media.make_clip(media.ClipSpec(duration_s=5, variant=1), cache))
    except media.MediaToolMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture
def gst_origin(clips):
    origin = GstOrigin({"clip": clips[0].path}, headers=[f"Cache-Control:{ORIGIN_CACHE_CONTROL}"]).start()
    yield origin
    origin.stop()


def describe_requests(origin: GstOrigin) -> list[dict]:
    events = [json.loads(line) for line in origin.events.drain() if line.startswith("{")]
    return [e for e in events if e.get("event") == "request" and e.get("method") == "DESCRIBE"]


def test_unchanged_content_gets_its_freshness_extended_and_changed_content_goes_stale(
        celery_worker_process, gst_origin, clips):
    url = gst_origin.url("clip")
    described = rtsp_request(url, "DESCRIBE", headers=[("Accept", "application/sdp")])
    assert described.status == 200
    origin = Origin.objects.create(name="gst", base_url=gst_origin.url(""), route_prefix="/vod")
    row = cached_row(origin=origin, url=url, expires_in=30, sdp=described.body.decode(),
                     cache_control=ORIGIN_CACHE_CONTROL)
    celery_worker_process.run_task(REVALIDATE_DUE)

    extended = wait_until(lambda: (r := reload(row)).expires_at > timezone.now() + dt.timedelta(seconds=3000) and r,
                          timeout=40, what="expires_at extended by max-age")
    assert extended.state == ContentState.COMPLETE
    assert extended.last_revalidated_at is not None
    assert any(e.get("user_agent", "").endswith(f"guid/{PROXY_GUID}") for e in describe_requests(gst_origin))

    # The origin now serves a different clip at the same URL.
    gst_origin.stop()
    gst_origin.vod = {"clip": clips[1].path}
    gst_origin.start()
    CachedContent.objects.filter(pk=row.pk).update(expires_at=timezone.now() + dt.timedelta(seconds=30))
    celery_worker_process.run_task(REVALIDATE_DUE)

    wait_until(lambda: reload(row).state == ContentState.STALE, timeout=40, what="changed content marked stale")


@pytest.fixture
def wms_origin(responder):
    return Origin.objects.create(name="wms", base_url=responder.url(""), route_prefix="/wms")


WMS_CC = "max-age=86399, public, proxy-revalidate, x-wms-content-size=638066"


def test_windows_media_content_is_revalidated_with_get_content_info(celery_worker_process, responder, wms_origin):
    def answer(request):
        etag = '"v2"' if request.uri.endswith("changed.wmv") else '"v1"'
        if request.uri.endswith("removed.wmv"):
            return Reply(404, "Not Found")
        return Reply(headers=[("Cache-Control", WMS_CC), ("ETag", etag)])

    responder.handler = answer
    same = cached_row(origin=wms_origin, url=responder.url("same.wmv"), expires_in=30, etag='"v1"',
                      cache_control=WMS_CC, content_size=638066)
    changed = cached_row(origin=wms_origin, url=responder.url("changed.wmv"), expires_in=30, etag='"v1"',
                         cache_control=WMS_CC, content_size=638066)
    removed = cached_row(origin=wms_origin, url=responder.url("removed.wmv"), expires_in=30, etag='"v1"',
                         cache_control=WMS_CC, content_size=638066)
    celery_worker_process.run_task(REVALIDATE_DUE)

    wait_until(lambda: reload(changed).state == ContentState.STALE and reload(removed).state == ContentState.STALE
               and reload(same).expires_at > timezone.now() + dt.timedelta(hours=23), timeout=40,
               what="verdicts for three rows")

    assert reload(same).state == ContentState.COMPLETE
    probes = responder.requests_matching("GET_PARAMETER", GCI)
    assert {p.uri for p in probes} >= {responder.url(n) for n in ("same.wmv", "changed.wmv", "removed.wmv")}
    assert all(p.body == b"\x00" for p in probes)
    assert all(p.headers["user-agent"] == probes[0].headers["user-agent"] for p in probes)
    assert probes[0].headers["user-agent"].startswith("WMCacheProxy/")
    assert not responder.requests_matching("DESCRIBE")  # GetContentInfo answered; no DESCRIBE needed


def test_unreachable_origin_leaves_content_untouched(celery_worker_process, responder, wms_origin):
    url = responder.url("clip.wmv")
    responder.stop()
    row = cached_row(origin=wms_origin, url=url, expires_in=30, etag='"v1"', cache_control=WMS_CC)
    before = reload(row)
    celery_worker_process.run_task(REVALIDATE_DUE)

    wait_until(lambda: reload(row).last_revalidated_at is not None, timeout=30, what="a revalidation attempt")

    after = reload(row)
    assert after.state == ContentState.COMPLETE and after.expires_at == before.expires_at
