"""Reports the roll-ups cannot answer (a window not at local midnight, a player, a node with a range...) read
the raw play logs: by-content a page at a time (reports.PagedContentReport: urls ranked by plays, then the page's
urls' metrics), whose pages must equal the plain aggregate (reports.playlog_report) number for number; and the
distinct-player count (in the "C" collation) must count what Python counts."""
import datetime as dt
import random

import pytest
from django.db import connection
from django.db.models.functions import TruncDate

from appliance.playback.filters import PlayLogFilterSet
from appliance.playback.models import PlayLog
from appliance.playback.reports import REPORT_GROUPS, PagedContentReport, playlog_report, playlog_report_rows
from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory

pytestmark = [pytest.mark.django_db]

SINCE = BASE_TIME + dt.timedelta(hours=5, minutes=30)  # not at midnight: the roll-ups do not answer


@pytest.fixture
def origins():
    if connection.vendor != "postgresql":
        pytest.skip("paged in PostgreSQL's SQL; SQLite reads playlog_report as one list")
    origins = [OriginFactory(name="gst"), OriginFactory(name="wms")]
    rng = random.Random(11)
    nodes = [ProxyNodeFactory(), ProxyNodeFactory()]
    for _ in range(260):
        PlayLogFactory(
            node=rng.choice(nodes), origin=rng.choice([*origins, None]), url=f"rtsp://p/c{rng.randrange(9)}",
            logged_at=BASE_TIME + dt.timedelta(minutes=rng.randrange(3 * 24 * 60)),
            kind=rng.choice(["logplay"] * 5 + ["logconnect"]),
            # players repeat within a key (distinct counts), "" is no player
            c_playerid=rng.choice(["", "A", "B", "C", "D", "E"]), c_hostexe=rng.choice(["wmplayer.exe", "vlc"]),
            c_playerversion=rng.choice(["12.0", "3.0", "11.0"]), x_duration=rng.choice([None, rng.randrange(1, 4000)]),
            avgbandwidth=rng.choice([None, 10**6, 333, rng.randrange(10**7)]),
            c_pkts_received=rng.choice([None, rng.randrange(10**6)]), c_pkts_lost_client=rng.choice([None, 0, 3]),
            c_buffercount=rng.choice([None, 2]), c_totalbuffertime=rng.choice([None, 5, 7]))
    # a key whose every play has no bandwidth and nothing received or lost (NULL average and loss ratio)
    PlayLogFactory(node=nodes[0], url="rtsp://p/empty", logged_at=SINCE + dt.timedelta(hours=1), avgbandwidth=None,
                   c_pkts_received=None, c_pkts_lost_client=None, c_playerid="")
    return origins


FILTERS = [
    {}, {"since": SINCE, "until": SINCE + dt.timedelta(days=1)}, {"since": SINCE},
    {"until": SINCE + dt.timedelta(hours=30)}, {"since": SINCE, "until": SINCE + dt.timedelta(days=1), "origin": 0},
    {"since": SINCE, "node": 1}, {"player": "C"}, {"url": "rtsp://p/c1", "since": SINCE},
    {"since": SINCE, "until": SINCE},  # nothing
]


def filtered(spec: dict, origins) -> PlayLogFilterSet:
    data = {name: value.isoformat() if isinstance(value, dt.datetime) else value for name, value in spec.items()}
    if "origin" in data:
        data["origin"] = origins[data["origin"]].pk
    if "node" in data:
        data["node"] = PlayLog.objects.order_by("node_id").values_list("node_id", flat=True).distinct()[data["node"]]
    filterset = PlayLogFilterSet(data, queryset=PlayLog.objects.all())
    assert filterset.is_valid(), filterset.errors
    return filterset


@pytest.mark.parametrize("prefetch", [3, 500])
def test_pages_equal_the_plain_aggregate(origins, settings, prefetch):
    settings.APPLIANCE_REPORT_PREFETCH_ROWS = prefetch
    checked = 0
    for group in REPORT_GROUPS:
        for spec in FILTERS:
            playlogs = filtered(spec, origins).qs
            raw = list(playlog_report(group=group, playlogs=playlogs))
            rows = playlog_report_rows(group=group, playlogs=playlogs)
            assert isinstance(rows, PagedContentReport if group == "by-content" else list)
            assert len(rows) == len(raw), (group, spec)
            # pages of 2 (past the prefetch: the ranking read again), single rows, the whole report afresh
            assert [row for start in range(0, len(raw), 2) for row in rows[start:start + 2]] == raw, (group, spec)
            assert [rows[i] for i in range(len(raw))] == raw and rows == raw
            assert list(playlog_report_rows(group=group, playlogs=playlogs)) == raw
            checked += len(raw)
    assert checked > 150


@pytest.mark.parametrize("group", sorted(REPORT_GROUPS))
def test_distinct_players_are_counted_as_python_counts(origins, group):
    """Player ids differing only in case or accents, or equal under a linguistic collation, stay distinct."""
    url = "rtsp://p/players"
    for player in ["a", "A", "é", "e\u0301", "ß", "ss", "a ", "", "a"]:
        PlayLogFactory(node=PlayLog.objects.first().node, url=url, logged_at=SINCE, c_playerid=player,
                       c_hostexe="players.exe", origin=None)
    playlogs = PlayLog.objects.filter(kind="logplay", logged_at=SINCE)
    keys = {"by-origin": ("origin_id",)}.get(group, REPORT_GROUPS[group])
    players = {}
    for row in playlogs.annotate(day=TruncDate("logged_at")).values():
        players.setdefault(tuple(row[k] for k in keys), set()).add(row["c_playerid"])
    counted = {tuple(row[k] for k in keys): row["unique_players"]
               for row in playlog_report_rows(group=group, playlogs=playlogs)}
    assert counted == {key: len(ids - {""}) for key, ids in players.items()}
    assert max(counted.values()) >= 7


def test_api_pages_of_a_window_report_equal_the_plain_aggregate(viewer_client, origins):
    until = SINCE + dt.timedelta(days=1)
    playlogs = PlayLog.objects.filter(logged_at__gte=SINCE, logged_at__lt=until)
    for group in REPORT_GROUPS:
        raw = list(playlog_report(group=group, playlogs=playlogs))
        pages, url = [], (f"/api/v1/reports/{group}/?since={SINCE.isoformat().replace('+00:00', 'Z')}"
                          f"&until={until.isoformat().replace('+00:00', 'Z')}&page_size=2")
        while url:
            body = viewer_client.get(url).json()
            assert body["count"] == len(raw)
            pages += body["results"]
            url = body["next"]
        assert [(r["plays"], r["unique_players"], r["packets_lost"]) for r in pages] == [
            (r["plays"], r["unique_players"], r["packets_lost"]) for r in raw]
        assert len(raw) > 2 or group == "by-day"
