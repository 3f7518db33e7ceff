"""Dashboard pages: access by role, forms calling services, lists with the shared FilterSets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState, PurgeRequest
from appliance.core.models import AuditLog
from appliance.history.models import TrafficBucket
from appliance.nodes.models import ProxyNode
from appliance.origins.credentials import decrypt_password
from appliance.origins.models import Origin
from appliance.playback.models import StreamSession
from tests.appliance.factories import LiveSplitFactory

pytestmark = pytest.mark.django_db

PAGES = ["ui:dashboard", "ui:origin-list", "ui:content-list", "ui:session-list", "ui:split-list", "ui:playlog-list",
         "ui:reports", "ui:node-list", "ui:uplink-list", "ui:audit-list"]
ORIGIN_FORM = {"name": "gst", "base_url": "rtsp://127.0.0.1:8600/", "route_prefix": "/vod", "allowed": "on",
               "cache_policy": "obey", "cache_ttl": "0", "stale_if_error": "0", "transport": "auto", "split": "auto",
               "username": "", "password": "s3cret"}


@pytest.fixture
def node():
    return ProxyNode.objects.create(name="node-1", token_hash="1" * 64, load_bandwidth_bps=2_500_000,
                                    last_seen=timezone.now())


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_users_are_sent_to_the_login_page(client, page):
    response = client.get(reverse(page))
    assert response.status_code == 302 and response["Location"].startswith(reverse("ui:login"))


@pytest.mark.parametrize("page", PAGES)
def test_viewer_sees_every_page(client, viewer, node, page):
    client.force_login(viewer)
    response = client.get(reverse(page))
    assert response.status_code == 200
    assert b"(viewer)" in response.content


def test_user_without_a_role_is_refused(client, no_role):
    client.force_login(no_role)
    assert client.get(reverse("ui:dashboard")).status_code == 403


def test_login_form_logs_in_and_redirects_to_the_dashboard(client, viewer):
    response = client.post(reverse("ui:login"), {"username": "vera", "password": "pw-vera"})
    assert response.status_code == 302 and response["Location"] == reverse("ui:dashboard")


def test_operator_creates_an_origin_through_the_form_and_it_is_audited(client, operator):
    client.force_login(operator)
    response = client.post(reverse("ui:origin-create"), ORIGIN_FORM, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    origin = Origin.objects.get(name="gst")
    assert decrypt_password(origin.password_encrypted) == "s3cret" and origin.route_prefix == "/vod"
    assert "s3cret" not in origin.password_encrypted
    entry = AuditLog.objects.get(action="origin.create")
    assert entry.actor_name == "otto" and entry.remote_addr == "10.1.2.3"
    assert entry.changes["password"] == "(changed)"
    listing = client.get(reverse("ui:origin-list"))
    assert b"gst" in listing.content and b"s3cret" not in listing.content


def test_editing_with_an_empty_password_keeps_the_stored_one(client, operator):
    client.force_login(operator)
    client.post(reverse("ui:origin-create"), ORIGIN_FORM)
    origin = Origin.objects.get(name="gst")
    edit = client.get(reverse("ui:origin-edit", args=[origin.pk]))
    assert b"s3cret" not in edit.content
    client.post(reverse("ui:origin-edit", args=[origin.pk]), {**ORIGIN_FORM, "password": "", "route_prefix": "/v2"})
    origin.refresh_from_db()
    assert (decrypt_password(origin.password_encrypted), origin.route_prefix) == ("s3cret", "/v2")


def test_bad_origin_input_shows_field_errors(client, operator):
    client.force_login(operator)
    client.post(reverse("ui:origin-create"), ORIGIN_FORM)
    response = client.post(reverse("ui:origin-create"), {**ORIGIN_FORM, "base_url": "http://x/"})
    assert response.status_code == 200 and b"Use an rtsp:// or rtsps:// URL with a host." in response.content
    duplicate = client.post(reverse("ui:origin-create"), {**ORIGIN_FORM, "route_prefix": "/other"})
    assert duplicate.status_code == 200 and b"must be unique" in duplicate.content
    assert Origin.objects.count() == 1


def test_viewer_cannot_change_anything(client, viewer, node):
    client.force_login(viewer)
    content = CachedContent.objects.create(node=node, url="rtsp://o/clip", state=ContentState.COMPLETE)
    assert client.post(reverse("ui:origin-create"), ORIGIN_FORM).status_code == 403
    assert client.get(reverse("ui:origin-create")).status_code == 403
    assert client.post(reverse("ui:content-purge", args=[content.pk])).status_code == 403
    assert not Origin.objects.exists() and not PurgeRequest.objects.exists()


def test_operator_purges_content_and_terminates_a_session(client, operator, node):
    client.force_login(operator)
    content = CachedContent.objects.create(node=node, url="rtsp://o/clip", state=ContentState.COMPLETE)
    session = StreamSession.objects.create(node=node, session_id="s1", started_at=timezone.now())
    client.post(reverse("ui:content-purge", args=[content.pk]))
    client.post(reverse("ui:session-terminate", args=[session.pk]))
    content.refresh_from_db()
    session.refresh_from_db()
    assert content.state == ContentState.PURGING and PurgeRequest.objects.filter(url="rtsp://o/clip").exists()
    assert session.terminate_requested_at is not None
    again = client.post(reverse("ui:session-terminate", args=[session.pk]), follow=True)
    assert again.status_code == 200  # idempotent request, reported as a message, not an error page


def test_content_list_uses_the_shared_filterset(client, viewer, node):
    client.force_login(viewer)
    CachedContent.objects.create(node=node, url="rtsp://o/fresh", state=ContentState.COMPLETE)
    CachedContent.objects.create(node=node, url="rtsp://o/old", state=ContentState.STALE)
    body = client.get(reverse("ui:content-list"), {"state": "stale"}).content
    assert b"rtsp://o/old" in body and b"rtsp://o/fresh" not in body


def test_dashboard_summary_counts(client, viewer, node):
    client.force_login(viewer)
    now = timezone.now()
    StreamSession.objects.create(node=node, session_id="a", started_at=now, served_from="cache", url="rtsp://p/a")
    StreamSession.objects.create(node=node, session_id="b", started_at=now, served_from="origin")
    StreamSession.objects.create(node=node, session_id="c", started_at=now - dt.timedelta(minutes=5),
                                 ended_at=now, served_from="origin")
    TrafficBucket.objects.create(node=node, grain="minute", start=now - dt.timedelta(minutes=3),
                                 bytes_out=4000, cache_bytes_out=3000, requests=4, cache_requests=1)
    response = client.get(reverse("ui:dashboard"))
    summary = response.context["summary"]
    assert summary["active_sessions"] == 2
    assert summary["bandwidth_bps"] == 2_500_000
    assert summary["hit_ratio"]["ratio"] == 0.75 and summary["hit_ratio"]["ratio_requests"] == 0.25
    assert b'data-key="node-1/a"' in response.content and b"2.5 Mbit/s" in response.content


def test_dashboard_lists_the_splits_that_have_not_ended(client, viewer, node):
    client.force_login(viewer)
    LiveSplitFactory(node=node, split_id="s-live", player_url="rtsp://p/tv/news", players=42,
                     state="reconnecting", origin_transport="tcp", reconnects=3)
    LiveSplitFactory(node=node, split_id="s-ended", player_url="rtsp://p/tv/old", state="ended")
    body = client.get(reverse("ui:dashboard")).content.decode()
    table = body[body.index('<table id="live-splits">'):]
    table = table[:table.index("</table>")]
    assert 'data-key="node-1/s-live"' in table and "rtsp://p/tv/news" in table
    assert ">42<" in table and "badge-reconnecting" in table and ">tcp<" in table and ">3<" in table
    assert "s-ended" not in table and "rtsp://p/tv/old" not in table


def test_split_list_uses_the_api_filterset(client, viewer, node):
    client.force_login(viewer)
    LiveSplitFactory(node=node, player_url="rtsp://p/tv/news", state="live")
    LiveSplitFactory(node=node, player_url="rtsp://p/tv/old", state="ended", end_reason="origin_error",
                     ended_at=timezone.now())
    body = client.get(reverse("ui:split-list"), {"live": "true"}).content
    assert b"rtsp://p/tv/news" in body and b"rtsp://p/tv/old" not in body
    body = client.get(reverse("ui:split-list"), {"state": "ended"}).content
    assert b"rtsp://p/tv/old" in body and b"origin_error" in body and b"rtsp://p/tv/news" not in body
    form = client.get(reverse("ui:split-list")).content
    assert b'name="url"' in form and b'name="state"' in form and b'name="node"' in form


def test_playlog_page_filters_by_session_without_listing_every_session(client, viewer, node):
    from tests.appliance.factories import PlayLogFactory, StreamSessionFactory

    sessions = [StreamSessionFactory(node=node, session_id=f"sid-{i}") for i in range(3)]
    PlayLogFactory(node=node, session=sessions[0], url="rtsp://p/first-session")
    PlayLogFactory(node=node, session=sessions[1], url="rtsp://p/second-session")
    client.force_login(viewer)
    page = client.get(reverse("ui:playlog-list")).content.decode()
    assert "first-session" in page and "second-session" in page
    assert "sid-2" not in page  # a text box, not one <option> per session (sid-2 has no play log to show)
    filtered = client.get(reverse("ui:playlog-list"), {"session": sessions[0].pk}).content.decode()
    assert "first-session" in filtered and "second-session" not in filtered
    assert client.get(reverse("ui:playlog-list"), {"session": "nope"}).status_code == 400
