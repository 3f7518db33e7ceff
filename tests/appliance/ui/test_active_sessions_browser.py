"""The "active sessions" card counts every live session, not the (capped) rows of the live table."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from tests.appliance.ui.test_browser import (  # noqa: F401 (fixtures)
    TIMEOUT_MS,
    browser,
    node,
    operator,
    post_events,
    post_report,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIVE_ROWS = 200  # what the dashboard table shows at most


def ended(session_id: str) -> dict:
    return {"id": str(uuid.uuid4()), "seq": 2, "at": "2026-11-25T12:00:09.250Z", "kind": "session.ended",
            "data": {"session_id": session_id, "bytes_out": 1, "packets_out": 1, "bytes_in": 0,
                     "packets_in": 0, "packets_lost": 0, "jitter_ms": 0, "end_reason": "teardown"}}


@pytest.fixture
def many_sessions(node):  # noqa: F811
    from appliance.playback.models import StreamSession

    start = timezone.now() - timezone.timedelta(hours=1)
    StreamSession.objects.bulk_create([
        StreamSession(node=node, session_id=f"old-{i:03d}", url="rtsp://proxy/vod/old", served_from="origin",
                      started_at=start + timezone.timedelta(seconds=i)) for i in range(LIVE_ROWS + 5)])


# Database fixtures before `browser` (Playwright's loop forbids ORM calls in this thread).
def test_card_counts_sessions_beyond_the_table(web_server, operator, many_sessions, browser):  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(web_server.url + "/")
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", "pw-otto")
    page.click("button[type=submit]")
    page.wait_for_selector("#live-status[data-state=open]")
    assert page.inner_text("#active-sessions") == str(LIVE_ROWS + 5)
    assert page.locator("#live-sessions tbody tr").count() == LIVE_ROWS

    session_id = "new-" + uuid.uuid4().hex[:8]
    post_report(web_server.url, session_id)
    page.wait_for_selector(f'#live-sessions tr[data-key="node-1/{session_id}"]')
    assert page.inner_text("#active-sessions") == str(LIVE_ROWS + 6)

    post_events(web_server.url, [ended("old-000")])  # the oldest: not among the rows shown
    page.wait_for_function(f"document.getElementById('active-sessions').textContent === '{LIVE_ROWS + 5}'")
