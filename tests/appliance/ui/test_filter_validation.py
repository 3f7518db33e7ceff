"""One validation for API and UI lists: a filter the API answers 400 to gets a 400 page with the error
shown and no rows, never the unfiltered list."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState
from appliance.nodes.models import ProxyNode
from appliance.playback.models import StreamSession
from tests.appliance.factories import LiveSplitFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    node = ProxyNode.objects.create(name="node-1", token_hash="1" * 64)
    StreamSession.objects.create(node=node, session_id="s1", url="rtsp://p/visible-session",
                                 served_from="cache", started_at=timezone.now())
    CachedContent.objects.create(node=node, url="rtsp://o/visible-content", state=ContentState.COMPLETE)
    LiveSplitFactory(node=node, player_url="rtsp://p/visible-split", state="live")


@pytest.mark.parametrize("page, api, bad, marker", [
    ("ui:session-list", "/api/v1/sessions/", {"served_from": "bogus"}, b"visible-session"),
    ("ui:session-list", "/api/v1/sessions/", {"started_after": "yesterday-ish"}, b"visible-session"),
    ("ui:content-list", "/api/v1/content/", {"state": "bogus"}, b"visible-content"),
    ("ui:split-list", "/api/v1/splits/", {"state": "bogus"}, b"visible-split"),
])
def test_invalid_filter_is_400_in_the_ui_as_in_the_api(client, viewer, rows, page, api, bad, marker, caplog):
    client.force_login(viewer)
    assert client.get(api, bad).status_code == 400
    assert marker in client.get(reverse(page)).content  # the row exists
    with caplog.at_level("INFO", logger="appliance.ui.mixins"):
        response = client.get(reverse(page), bad)
    assert response.status_code == 400
    body = response.content
    assert marker not in body
    assert b'class="error"' in body
    assert len([r for r in caplog.records if "filters rejected" in r.getMessage()]) == 1
