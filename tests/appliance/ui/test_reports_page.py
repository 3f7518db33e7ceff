"""The Reports page: presets, human columns, the API's numbers, a chart, a CSV of exactly the table,
the QoS join."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from appliance.ui import report_table
from tests.appliance.factories import PlayLogFactory, ProxyNodeFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, viewer):
    client.force_login(viewer)
    return client


def _table(page: str) -> list[list[str]]:
    body = page.split('<table id="report">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in rows
    ]


def _plays(node, now):
    today = timezone.localtime(now).replace(hour=1, minute=0, second=0, microsecond=0)
    for days_ago, url, n in (
        (0, "rtsp://p/vod/a", 3),
        (0, "rtsp://p/vod/b", 1),
        (3, "rtsp://p/vod/b", 2),
        (12, "rtsp://p/vod/c", 5),
    ):
        for _ in range(n):
            at = today - dt.timedelta(days=days_ago)
            PlayLogFactory(
                node=node,
                url=url,
                logged_at=at,
                received_at=at,
                x_duration=1800,
                avgbandwidth=2_000_000,
                c_pkts_received=990,
                c_pkts_lost_client=10,
            )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("today", {"rtsp://p/vod/a": "3", "rtsp://p/vod/b": "1"}),
        ("7d", {"rtsp://p/vod/a": "3", "rtsp://p/vod/b": "3"}),
        ("30d", {"rtsp://p/vod/a": "3", "rtsp://p/vod/b": "3", "rtsp://p/vod/c": "5"}),
    ],
)
def test_presets_select_whole_local_days(logged_in, settings, preset, expected):
    settings.TIME_ZONE = "Europe/Berlin"
    _plays(ProxyNodeFactory(), timezone.now())
    page = logged_in.get(reverse("ui:reports"), {"group": "by-content", "preset": preset})
    assert page.status_code == 200
    assert {row[0]: row[1] for row in _table(page.content.decode())} == expected


def test_preset_window_is_local_midnight_to_midnight(settings):
    settings.TIME_ZONE = "America/New_York"
    timezone.activate("America/New_York")
    try:
        now = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)  # 22:00 on the 19th in New York
        since, until = report_table.preset_window("7d", now)
        assert (timezone.localtime(since).isoformat(), timezone.localtime(until).isoformat()) == (
            "2026-11-13T00:00:00-05:00",
            "2026-11-20T00:00:00-05:00",
        )
    finally:
        timezone.deactivate()


def test_columns_have_human_labels_and_units_and_match_the_api(logged_in, client):
    _plays(ProxyNodeFactory(), timezone.now())
    page = logged_in.get(reverse("ui:reports"), {"group": "by-content", "preset": "30d"}).content.decode()
    for label in (
        "Content URL",
        "Plays",
        "Unique players",
        "Watched (hours)",
        "Average bandwidth (Mbit/s)",
        "Packets lost (%)",
        "Buffering (minutes)",
    ):
        assert f">{label}</th>" in page
    assert "avg_bandwidth_bps" not in page and "greater than or equal" not in page
    since, until = report_table.preset_window("30d")
    api = logged_in.get(
        "/api/v1/reports/by-content/", {"since": since.isoformat(), "until": until.isoformat()}
    ).json()
    expected = [
        [
            r["url"],
            str(r["plays"]),
            str(r["unique_players"]),
            f"{r['hours_watched']:.2f}",
            f"{r['avg_bandwidth_bps'] / 1e6:.2f}",
            f"{r['loss_ratio'] * 100:.2f}",
            str(r["buffer_count"]),
            f"{r['buffer_seconds'] / 60:.1f}",
        ]
        for r in api["results"]
    ]
    assert _table(page) == expected
    assert expected[0][:6] == ["rtsp://p/vod/c", "5", "5", "2.50", "2.00", "1.00"]


def test_a_chart_sits_above_the_table(logged_in):
    _plays(ProxyNodeFactory(), timezone.now())
    page = logged_in.get(reverse("ui:reports"), {"group": "by-day", "preset": "7d"}).content.decode()
    assert page.index('id="report-chart-canvas"') < page.index('<table id="report">')
    assert "js/Chart.min.js" in page
    data = page.split('id="report-chart-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert '"plays": [4, 2]' in data  # today, then 3 days ago (most plays first, as the table)


def test_csv_is_the_table_as_shown_with_formulas_neutralised(logged_in):
    node = ProxyNodeFactory()
    now = timezone.now()
    hostile = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "rtsp://p/plain"]
    for url in hostile:
        PlayLogFactory(node=node, url=url, logged_at=now, received_at=now)
    params = {"group": "by-content", "preset": "today"}
    page = logged_in.get(reverse("ui:reports"), params)
    response = logged_in.get(reverse("ui:reports"), {**params, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="report-by-content-today.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [c.label for c in report_table.columns("by-content")]
    shown = _table(page.content.decode())
    assert len(rows) - 1 == len(shown) == len(hostile)
    for row, shown_row in zip(rows[1:], shown, strict=True):
        assert row[1:] == shown_row[1:]
        assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r"))
        assert row[0] == ("'" + shown_row[0] if shown_row[0] != "rtsp://p/plain" else shown_row[0])


def test_invalid_filters_answer_400_and_show_no_rows(logged_in):
    _plays(ProxyNodeFactory(), timezone.now())
    page = logged_in.get(reverse("ui:reports"), {"group": "by-content", "since": "yesterday-ish"})
    assert page.status_code == 400
    assert _table(page.content.decode()) == [["No plays in this range."]]
    assert 'id="report-errors"' in page.content.decode()
    assert logged_in.get(reverse("ui:reports"), {"group": "nonsense"}).status_code == 404


def test_session_quality_joins_the_players_logplay_with_the_proxy_counters(logged_in):
    node = ProxyNodeFactory(name="edge-1")
    session = StreamSessionFactory(
        node=node, session_id="s1", packets_out=2000, packets_lost=20, jitter_ms=3.25
    )
    StreamSessionFactory(node=node, session_id="s2", started_at=session.started_at - dt.timedelta(minutes=1))
    for received, lost in ((1000, 5), (980, 15)):
        PlayLogFactory(
            node=node,
            session=session,
            c_pkts_received=received,
            c_pkts_lost_client=lost,
            c_buffercount=2,
            c_totalbuffertime=3,
            avgbandwidth=1_000_000,
            c_quality=95,
        )
    PlayLogFactory(node=node, session=session, kind="logconnect", c_pkts_received=99999)
    page = logged_in.get(reverse("ui:session-qos")).content.decode()
    body = page.split('<table id="qos" class="compact">', 1)[1].split("</table>", 1)[0]
    rows = [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    ]
    assert rows[0][:2] == ["edge-1", "s1"]
    assert rows[0][6:] == ["2000", "20", "1.00", "3.2", "1980", "20", "1.00", "4", "6", "1.00", "95", "2"]
    assert rows[1][:2] == ["edge-1", "s2"] and rows[1][10:] == ["–"] * 7 + ["0"]
    response = logged_in.get(reverse("ui:session-qos"), {"format": "csv"})
    csv_rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert csv_rows[0][6] == "Proxy: packets sent" and csv_rows[0][10] == "Player: packets received"
    assert csv_rows[1][6:] == rows[0][6:] and csv_rows[2][10:] == [""] * 7 + ["0"]


def test_session_quality_api_has_the_same_figures(logged_in):
    node = ProxyNodeFactory(name="edge-2")
    session = StreamSessionFactory(node=node, session_id="q1", packets_out=500, packets_lost=5, jitter_ms=1.5)
    for received, lost in ((400, 4), (90, 1)):
        PlayLogFactory(
            node=node,
            session=session,
            c_pkts_received=received,
            c_pkts_lost_client=lost,
            c_buffercount=1,
            c_totalbuffertime=2,
            avgbandwidth=3_000_000,
            c_quality=90,
        )
    StreamSessionFactory(node=node, session_id="other", url="rtsp://p/other")
    body = logged_in.get("/api/v1/sessions/qos/", {"url": "clip", "ordering": "-started_at"}).json()
    assert body["count"] == 1
    [row] = body["results"]
    assert (row["session_id"], row["packets_out"], row["packets_lost"], row["jitter_ms"]) == (
        "q1",
        500,
        5,
        1.5,
    )
    assert (
        row["player_logs"],
        row["player_received"],
        row["player_lost"],
        row["player_buffer_count"],
        row["player_buffer_seconds"],
        row["player_bandwidth"],
        row["player_quality"],
    ) == (2, 490, 5, 2, 4, 3e6, 90)
    page = logged_in.get(reverse("ui:session-qos"), {"url": "clip"}).content.decode()
    assert ">490<" in page and ">3.00<" in page and "rtsp://p/other" not in page


def test_session_quality_has_a_chart_of_both_losses_above_its_table(logged_in):
    node = ProxyNodeFactory(name="edge-3")
    session = StreamSessionFactory(node=node, session_id="c1", packets_out=1000, packets_lost=30)
    PlayLogFactory(node=node, session=session, c_pkts_received=950, c_pkts_lost_client=50)
    page = logged_in.get(reverse("ui:session-qos")).content.decode()
    assert page.index('id="qos-chart-canvas"') < page.index('<table id="qos"')
    data = page.split('id="qos-chart-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert '"labels": ["c1"], "proxy_loss": [3.0], "player_loss": [5.0]' in data


def test_session_and_node_lists_show_human_units(logged_in):
    node = ProxyNodeFactory(name="edge-9", load_bandwidth_bps=2_500_000)
    start = timezone.make_aware(dt.datetime(2026, 11, 20, 12, 0, 5))
    StreamSessionFactory(node=node, bytes_out=3 * 1024 * 1024, started_at=start,
                         ended_at=start + dt.timedelta(minutes=1), end_reason="teardown")
    sessions = logged_in.get(reverse("ui:session-list")).content.decode()
    assert "3.0\xa0MB" in sessions and "2026-11-20 12:00:05" in sessions and "(Teardown)" in sessions
    assert "2.5 Mbit/s" in logged_in.get(reverse("ui:node-list")).content.decode()


def test_table_cells_are_escaped_and_empty_cells_shown_as_a_dash(logged_in):
    at = timezone.now()
    PlayLogFactory(node=ProxyNodeFactory(), url='rtsp://p/vod/<b>"x"&y', logged_at=at, received_at=at,
                   c_playerid="", x_duration=3600, avgbandwidth=None, c_pkts_received=None,
                   c_pkts_lost_client=None, c_buffercount=2, c_totalbuffertime=None)
    page = logged_in.get(reverse("ui:reports"), {"group": "by-content", "preset": "today"}).content.decode()
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "<b>" not in body and "&lt;b&gt;&quot;x&quot;&amp;y" in body
    # no bandwidth and no packet counts: those two cells are empty, shown as a dash
    assert _table(page) == [['rtsp://p/vod/<b>"x"&y', "1", "0", "1.00", "–", "–", "2", "0.0"]]
    assert body.count('class="num"') == len(report_table.METRIC_COLUMNS)
