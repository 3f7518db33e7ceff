"""A real Chromium (Playwright) against gunicorn + uvicorn: log in, create an origin, watch a session appear live."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from appliance.core.audit import SYSTEM
from appliance.nodes.services import node_create_or_set_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NODE_TOKEN = "browser-test-token-" + uuid.uuid4().hex
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 15_000


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def post_report(base_url: str, session_id: str) -> dict:
    return post_events(base_url, [{"id": str(uuid.uuid4()), "seq": 1, "at": "2026-11-25T12:00:01.250Z",
                                   "kind": "session.started",
                                   "data": {"session_id": session_id, "url": "rtsp://proxy/vod/clip",
                                            "origin_url": "rtsp://127.0.0.1:8600/clip",
                                            "player_addr": "127.0.0.1:50000", "user_agent": "ffplay",
                                            "transports": ["udp"], "served_from": "cache"}}])


def post_split(base_url: str, split_id: str, seq: int, state: str, players: int) -> dict:
    return post_events(base_url, [{"id": str(uuid.uuid4()), "seq": seq, "at": "2026-11-25T12:00:02.250Z",
                                   "kind": "split.changed",
                                   "data": {"split_id": split_id, "url": "rtsp://127.0.0.1:8600/live",
                                            "player_url": "rtsp://proxy/tv/live", "state": state,
                                            "players": players, "peak_players": players, "reconnects": 1,
                                            "media_stalls": 0, "origin_transport": "tcp",
                                            "started_at": "2026-11-25T12:00:00.000Z",
                                            "end_reason": "shutdown" if state == "ended" else None,
                                            "packets_in": 10, "bytes_in": 10000}}])


def post_events(base_url: str, events: list[dict]) -> dict:
    batch = {
        "schema_version": 1,
        "node": {"name": "node-1", "version": "0.1.0", "listen": "127.0.0.1:8554",
                 "load": {"sessions": 1, "bandwidth_bps": 1_000_000}},
        "events": events,
    }
    request = urllib.request.Request(base_url + "/internal/v1/reports", data=json.dumps(batch).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {NODE_TOKEN}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def operator(transactional_db):
    # Committed for real: the web server is another process.
    from django.contrib.auth.models import Group, User

    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = User.objects.create_user("otto")
    # The test process may hash with a fast test-only hasher the server does not know; use the default one.
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode("pw-otto", hasher.salt())
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    return user


@pytest.fixture
def node(transactional_db):
    return node_create_or_set_token(name="node-1", token=NODE_TOKEN, actor=SYSTEM)[0]


# Database fixtures come before `browser`: Playwright's sync API runs an event loop in this thread, and
# Django refuses ORM calls while one is running.
def test_operator_logs_in_creates_an_origin_and_sees_a_session_arrive_live(web_server, operator, node, browser):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(web_server.url + "/")
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", "pw-otto")
    page.click("button[type=submit]")
    page.wait_for_selector("#live-sessions")

    page.click("text=Origins")
    page.click("text=New origin")
    page.fill("input[name=name]", "gst-origin")
    page.fill("input[name=base_url]", "rtsp://127.0.0.1:8600/")
    page.fill("input[name=route_prefix]", "/vod")
    page.select_option("select[name=cache_policy]", "force_ttl")
    page.fill("input[name=cache_ttl]", "600")
    page.click("#origin-form button[type=submit]")
    page.wait_for_selector("#origins >> text=gst-origin")
    assert "Force a TTL" in page.inner_text("#origins")

    page.click("text=Dashboard")
    page.wait_for_selector("#live-status[data-state=open]")
    page.evaluate("window.__notReloaded = true")
    session_id = "live-" + uuid.uuid4().hex[:8]
    assert post_report(web_server.url, session_id) == {"accepted": 1, "duplicates": 0}

    row = page.wait_for_selector(f'#live-sessions tr[data-key="node-1/{session_id}"]')
    assert "rtsp://proxy/vod/clip" in row.inner_text()
    assert page.inner_text("#active-sessions") == "1"

    split_id = "split-" + uuid.uuid4().hex[:8]
    assert post_split(web_server.url, split_id, 2, "live", 7)["accepted"] == 1
    split_row = f'#live-splits tr[data-key="node-1/{split_id}"]'
    assert page.wait_for_selector(split_row).inner_text().split("\t")[:6] == [
        "rtsp://proxy/tv/live", "node-1", "7", "live", "tcp", "1"]
    post_split(web_server.url, split_id, 3, "reconnecting", 7)
    page.wait_for_selector(f"{split_row} .badge-reconnecting")
    post_split(web_server.url, split_id, 4, "ended", 0)
    page.wait_for_selector(split_row, state="detached")
    assert page.evaluate("window.__notReloaded") is True
