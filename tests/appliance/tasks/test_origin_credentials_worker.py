"""A real Celery worker asks origins that require a user with the Origin row's username/password.

Revalidation: the GStreamer origin (tests/peers/gst_origin.py --auth digest). SendEvent: the scripted
responder checking a Digest answer with qop=auth (computed here with hashlib, independently of
proxyd.rtsp.auth). The password must not show up in the worker's output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState
from appliance.nodes.models import ProxyNode
from appliance.origins.credentials import encrypt_password
from appliance.origins.models import Origin
from appliance.uplink.models import UplinkEvent, UplinkState
from proxyd.rtsp.oneshot import rtsp_request
from tests.appliance.tasks.harness import wait_until
from tests.peers import media
from tests.peers import origin as origin_mod
from tests.appliance.tasks.rtsp_responder import RecordedRequest, Reply

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

USER, PASSWORD = "cache-bot", "s3cret, with: punctuation"
CACHE_CONTROL = "public, max-age=3600"


@pytest.fixture(scope="module")
def clip():
    try:
        return media.make_clip(media.ClipSpec(duration_s=3), media.default_cache_dir())
    except media.MediaToolMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture
def protected_origin(clip, tmp_path):
    try:
        origin_mod.check_gst_origin_available()
    except origin_mod.PeerMissing as exc:
        pytest.skip(str(exc))
    origin = origin_mod.GstOrigin(vod={"clip": clip.path}, headers={"Cache-Control": CACHE_CONTROL},
                                  auth=("digest", USER, PASSWORD), stderr_path=tmp_path / "gst-origin.log")
    origin.start()
    yield origin
    origin.stop()


def worker_output(worker) -> str:
    return "\n".join(worker.output.drain())


def test_revalidation_of_a_protected_origin_authenticates(celery_worker_process, protected_origin):
    url = protected_origin.url("clip")
    assert rtsp_request(url, "DESCRIBE").status == 401
    described = rtsp_request(url, "DESCRIBE", headers=[("Accept", "application/sdp")], username=USER,
                             password=PASSWORD)
    assert described.status == 200
    origin = Origin.objects.create(name="protected", base_url=protected_origin.url(""), route_prefix="/p",
                                   username=USER, password_encrypted=encrypt_password(PASSWORD))
    now = timezone.now()
    node, _ = ProxyNode.objects.get_or_create(name="node-1", defaults={"token_hash": "0" * 64})
    row = CachedContent.objects.create(node=node, origin=origin, url=url, state=ContentState.COMPLETE,
                                       fetched_at=now - dt.timedelta(hours=1),
                                       expires_at=now + dt.timedelta(seconds=30), sdp=described.body.decode(),
                                       cache_control=CACHE_CONTROL)
    mark = protected_origin.mark()
    celery_worker_process.run_task("content.revalidate_due")  # not waiting for beat

    extended = wait_until(lambda: (r := CachedContent.objects.get(pk=row.pk)).expires_at
                          > timezone.now() + dt.timedelta(seconds=3000) and r, timeout=40,
                          what="expires_at extended by the origin's max-age")
    assert extended.state == ContentState.COMPLETE
    answered = [(e["status"], e["authorization"]) for e in protected_origin.responses(after=mark)]
    assert (401, False) in answered and (200, True) in answered
    assert PASSWORD not in worker_output(celery_worker_process)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class DigestOrigin:
    """Responder handler: 401 + a Digest challenge (qop=auth) unless the request answers it correctly."""

    REALM, NONCE = "wms@origin", "d1g3st-n0nce"

    def __init__(self) -> None:
        self.answers: list[dict[str, str]] = []

    def __call__(self, request: RecordedRequest) -> Reply:
        value = request.headers.get("authorization", "")
        params = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', value)}
        if value.startswith("Digest ") and self.valid(request, params):
            self.answers.append(params)
            return Reply()
        challenge = f'Digest realm="{self.REALM}", nonce="{self.NONCE}", qop="auth", opaque="op"'
        return Reply(401, "Unauthorized", [("WWW-Authenticate", challenge)])

    def valid(self, request: RecordedRequest, p: dict[str, str]) -> bool:
        if p.get("username") != USER or p.get("nonce") != self.NONCE or p.get("qop") != "auth" \
                or p.get("opaque") != "op" or p.get("uri") != request.uri:
            return False
        ha1 = md5(f"{USER}:{self.REALM}:{PASSWORD}")
        ha2 = md5(f"{request.method}:{request.uri}")
        return p.get("response") == md5(f"{ha1}:{self.NONCE}:{p['nc']}:{p['cnonce']}:auth:{ha2}")


def test_send_event_to_a_protected_origin_authenticates(celery_worker_process, responder):
    digest = DigestOrigin()
    responder.handler = digest
    origin = Origin.objects.create(name="wms", base_url=responder.url(""), route_prefix="/wms",
                                   username=USER, password_encrypted=encrypt_password(PASSWORD))
    linked = UplinkEvent.objects.create(origin=origin, url=responder.url("vod/a.wmv"),
                                        event_type="remote-open", body="1\r\n1,28,1\r\n")
    unlinked = UplinkEvent.objects.create(origin=None, url=responder.url("vod/b.wmv"),  # found by its URL
                                          event_type="remote-open", body="1\r\n1,28,2\r\n")

    for event in (linked, unlinked):
        wait_until(lambda e=event: UplinkEvent.objects.get(pk=e.pk).state == UplinkState.SENT, timeout=30,
                   what=f"event {event.pk} sent")
    assert sorted(a["uri"] for a in digest.answers) == [responder.url("vod/a.wmv"),
                                                        responder.url("vod/b.wmv")]
    assert all(UplinkEvent.objects.get(pk=e.pk).attempts == 1 for e in (linked, unlinked))
    assert PASSWORD not in worker_output(celery_worker_process)
