"""A real Chromium: after its websocket drops, the dashboard reloads the live panels on reconnect, so a
session that started and one that ended while it was disconnected show correctly without a page reload."""

from __future__ import annotations

import uuid

import pytest

from tests.appliance.ui.test_browser import (  # noqa: F401  (fixtures shared with the other browser test)
    TIMEOUT_MS,
    browser,
    node,
    operator,
    post_events,
    post_report,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def end_session(base_url: str, session_id: str) -> dict:
    return post_events(
        base_url,
        [
            {
                "id": str(uuid.uuid4()),
                "seq": 2,
                "at": "2026-11-25T12:00:09.000Z",
                "kind": "session.ended",
                "data": {
                    "session_id": session_id,
                    "bytes_out": 1000,
                    "packets_out": 10,
                    "bytes_in": 1000,
                    "packets_in": 10,
                    "packets_lost": 0,
                    "jitter_ms": 0.0,
                    "end_reason": "teardown",
                },
            }
        ],
    )


def test_the_dashboard_resyncs_after_its_websocket_reconnects(web_server, operator, node, browser):  # noqa: F811
    sockets = []
    blocked = {"now": False}

    def route(ws):  # the test's hand on the wire between the page and the server
        if blocked["now"]:
            ws.close(code=1011)
            return
        ws.connect_to_server()
        sockets.append(ws)

    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.route_web_socket("**/ws/live/", route)
    page.goto(web_server.url + "/")
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", "pw-otto")
    page.click("button[type=submit]")
    page.wait_for_selector("#live-status[data-state=open]")
    page.evaluate("window.__notReloaded = true")

    ending, starting = "end-" + uuid.uuid4().hex[:8], "new-" + uuid.uuid4().hex[:8]
    post_report(web_server.url, ending)
    page.wait_for_selector(f'#live-sessions tr[data-key="node-1/{ending}"]')
    assert page.inner_text("#active-sessions") == "1"

    blocked["now"] = True
    sockets[-1].close(code=1006)
    page.wait_for_selector("#live-status[data-state=closed]")
    end_session(web_server.url, ending)  # both events are published while the page is not listening
    post_report(web_server.url, starting)
    blocked["now"] = False

    page.wait_for_selector(f'#live-sessions tr[data-key="node-1/{starting}"]')
    page.wait_for_selector(f'#live-sessions tr[data-key="node-1/{ending}"]', state="detached")
    assert page.inner_text("#active-sessions") == "1"
    assert page.get_attribute("#live-status", "data-state") == "open"
    assert len(sockets) == 2
    assert page.evaluate("window.__notReloaded") is True
