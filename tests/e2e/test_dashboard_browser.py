"""A real Chromium on the live web stack while ffmpeg players play through a real proxyd (GStreamer origin)
that reports to it: the bandwidth chart and the sessions count move, a report opened with a preset
downloads a CSV of exactly its table; then every page is photographed (deploy/scripts/screenshots.py)."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import json
import os
import signal
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.appliance.ui.conftest import web_server  # noqa: F401  (gunicorn + uvicorn on the test database)

pytestmark = [pytest.mark.peers, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000
PLAYERS = 3
HELD_PLAY_TIMEOUT_S = 240  # a held player's hard deadline (it is released within the dashboard's waits)


@pytest.fixture
def operator_login(transactional_db):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("olga")
    hasher = PBKDF2PasswordHasher()  # the server process knows the default hasher, not the tests' fast one
    user.password = hasher.encode("pw-olga-1", hasher.salt())
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    return "olga", "pw-olga-1"


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def post_player_logs(base_url: str, token: str, clip_url: str, session_ids: list[str]) -> None:
    """LogPlay reports as proxyd sends them for a Windows Media player (ffmpeg sends none), one per
    session."""
    now = dt.datetime.now(dt.UTC)
    count = len(session_ids)
    events = [
        {
            "id": str(uuid.uuid4()),
            "seq": 1_000_000 + i,
            "at": now.isoformat().replace("+00:00", "Z"),
            "kind": "playlog",
            "data": {
                "session_id": session_ids[i],
                "url": clip_url,
                "kind": "logplay",
                "log_type": "legacy",
                "player_addr": f"192.0.2.{10 + i}:5000",
                "user_agent": "NSPlayer/12.0",
                "raw": "",
                "parse_error": None,
                "fields": {
                    "c-playerid": f"{{player-{i}}}",
                    "c-ip": f"192.0.2.{10 + i}",
                    "x-duration": "1800",
                    "avgbandwidth": "2000000",
                    "c-pkts-received": "990",
                    "c-pkts-lost-client": "10",
                    "c-buffercount": "1",
                    "c-totalbuffertime": "6",
                    "c-hostexe": "wmplayer.exe",
                    "c-playerversion": "12.0.7601",
                },
            },
        }
        for i in range(count)
    ]
    body = {"schema_version": 1, "node": {"name": "e2e-node"}, "events": events}
    request = urllib.request.Request(
        base_url + "/internal/v1/reports",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["accepted"] == count


@pytest.fixture
def vod_origin(transactional_db, shared_gst_origin):
    from appliance.origins.models import Origin

    return Origin.objects.create(name="gst-vod", base_url=shared_gst_origin.url(), route_prefix="/vod")


def run_beat_work(origin_id: int) -> None:
    """What Celery beat does every minute (roll-up, origin probe), on a thread of its own: this thread runs
    Playwright's event loop, where Django refuses ORM calls."""
    from django.db import connection
    from django.utils import timezone

    from appliance.history.probes import origin_probe
    from appliance.history.services import history_rollup

    def rollup():
        try:
            history_rollup(now=timezone.now(), lookback_minutes=5)
            origin_probe(origin_id=origin_id, timeout=5.0, now=timezone.now())
        finally:
            connection.close()

    thread = threading.Thread(target=rollup)
    thread.start()
    thread.join(timeout=30)


class HeldPlayers:
    """PLAYERS ffmpeg players of `url`, each SIGSTOPped at its first frame: their sessions stay open,
    all at once, until release() (the 6 s clip is otherwise over before the dashboard's 5 s
    debounced panel reload on a loaded machine). proxyd keeps writing the clip into their sockets."""

    def __init__(self, peer_players, url: str) -> None:
        self.results: list = []
        self.held: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.all_held = threading.Event()
        self.threads = [threading.Thread(target=self._play, args=(peer_players, url), daemon=True)
                        for _ in range(PLAYERS)]
        for thread in self.threads:
            thread.start()

    def _play(self, peer_players, url: str) -> None:
        self.results.append(peer_players.ffmpeg_play(url, transport="tcp", decode=False,
                                                     timeout=HELD_PLAY_TIMEOUT_S, on_first_frame=self._hold))

    def _hold(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGSTOP)
        with self.lock:
            self.held.append(proc)
            if len(self.held) == PLAYERS:
                self.all_held.set()

    def wait_all_held(self) -> None:
        assert self.all_held.wait(TIMEOUT_MS / 1000), f"{len(self.held)} of {PLAYERS} players played a frame"

    def release(self) -> list:
        """SIGCONT every held player (they play the rest of the clip), then their results."""
        with self.lock:
            for proc in self.held:
                proc.send_signal(signal.SIGCONT)
        for thread in self.threads:
            thread.join(timeout=HELD_PLAY_TIMEOUT_S)
        return self.results


@pytest.fixture
def held_players(peer_players):
    """held_players(url) -> HeldPlayers; every player still held is released at teardown."""
    started: list[HeldPlayers] = []

    def start(url: str) -> HeldPlayers:
        started.append(HeldPlayers(peer_players, url))
        return started[-1]

    yield start
    for players in started:
        players.release()


def test_dashboard_moves_while_ffmpeg_plays_and_a_report_downloads_its_csv(
    web_server,
    operator_login,
    control_node,
    vod_origin,
    controlled_proxyd,
    shared_gst_origin,  # noqa: F811
    held_players,
    browser,
    tmp_path,
):
    username, password = operator_login
    node, _ = control_node
    proxy = controlled_proxyd(web_server.url, routes={"/vod": shared_gst_origin.url()})
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(web_server.url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#live-status[data-state=open]")
    page.wait_for_selector("#charts[data-loaded]")
    assert page.inner_text("#active-sessions") == "0"

    players = held_players(proxy.url("/vod/long"))  # held mid-play: the panels reload while they play
    players.wait_all_held()
    # the sessions card and the live points of both charts follow proxyd's reports while they play
    page.wait_for_function(f"Number(document.getElementById('active-sessions').textContent) === {PLAYERS}")
    page.wait_for_function("applianceCharts.bandwidth.data.datasets[2].data.some(p => p.y > 0.05)")
    page.wait_for_function(f"applianceCharts.sessions.data.datasets[2].data.some(p => p.y >= {PLAYERS})")
    page.wait_for_selector(f'#nodes tr[data-node="{node.name}"] .badge-online')
    # the top-content chart follows the sessions as they start (reloaded after session events)
    page.wait_for_function(f"applianceCharts.topNow.data.datasets[0].data.some(n => n >= {PLAYERS})")
    out = Path(os.environ.get("APPLIANCE_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "dashboard-live.png"), full_page=True, animations="disabled")  # mid-play
    results = players.release()
    assert len(results) == PLAYERS and all(r.ok for r in results), [r.describe() for r in results]
    page.wait_for_function("document.getElementById('active-sessions').textContent === '0'")
    run_beat_work(vod_origin.pk)
    # the history behind the charts (reloaded on a range click) now holds the bytes the players got and
    # the sessions that were open
    page.click("#charts button[data-range='24h']")
    page.click("#charts button[data-range='1h']")
    page.wait_for_function(
        "applianceCharts.bandwidth.data.datasets[0].data.some(p => p.y > 0.05)"
        " && applianceCharts.sessions.data.datasets[0].data.some(p => p.y >= 3)"
        " && applianceCharts.topRange.data.labels.includes('/vod/long')"
    )
    # the probe's row arrives with a later panel load than the charts' points
    page.wait_for_function("document.querySelector('#origin-health tr[data-origin=\"gst-vod\"] .badge')"
                           "?.textContent !== 'unknown'")
    origin_row = page.inner_text('#origin-health tr[data-origin="gst-vod"]').split("\t")
    assert origin_row[:4] == ["gst-vod", "reachable", str(PLAYERS), "0"] and origin_row[6].endswith(" ms")

    page.goto(web_server.url + "/reports/qos/")
    qos = [row.split("\t") for row in page.inner_text("#qos tbody").splitlines()]
    assert len(qos) == PLAYERS and all(int(row[6]) > 100 for row in qos)  # proxy packets sent per session
    post_player_logs(web_server.url, node.token, proxy.url("/vod/long"), [row[1] for row in qos])
    page.reload()
    joined = [row.split("\t") for row in page.inner_text("#qos tbody").splitlines()]
    # the player's figures now sit next to the proxy's own counters of the same session
    assert [row[:10] for row in joined] == [row[:10] for row in qos]
    assert all(row[10:] == ["990", "10", "1.00", "1", "6", "2.00", "–", "1"] for row in joined), joined

    page.click("nav >> text=Reports")
    page.click("#report-presets >> text=Today")
    page.wait_for_selector("#report-presets a.active:text('Today')")
    page.wait_for_selector("#report-chart-canvas")
    shown = [row.split("\t") for row in page.inner_text("#report tbody").splitlines()]
    assert shown == [[proxy.url("/vod/long"), "3", "3", "1.50", "2.00", "1.00", "3", "0.3"]]
    with page.expect_download() as download:
        page.click("#report-csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0] == [
        "Content URL",
        "Plays",
        "Unique players",
        "Watched (hours)",
        "Average bandwidth (Mbit/s)",
        "Packets lost (%)",
        "Buffering events",
        "Buffering (minutes)",
    ]
    assert rows[1:] == shown
    assert download.value.suggested_filename == "report-by-content-today.csv"
    page.close()

    spec = importlib.util.spec_from_file_location("screenshots", REPO / "deploy/scripts/screenshots.py")
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    written = screenshots.capture(web_server.url, username, password, out, browser=browser)
    assert {p.name for p in written} == {"login.png", *(f"{name}.png" for name in screenshots.PAGES)}
    for path in written:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 600_000, (path, len(data))
