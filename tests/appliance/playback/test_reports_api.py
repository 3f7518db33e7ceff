"""Report aggregates: expected numbers are computed in Python from the same inputs the factories store."""
import datetime as dt
from collections import defaultdict

import pytest

from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"


@pytest.fixture
def rows():
    node = ProxyNodeFactory()
    gst, wms = OriginFactory(name="gst"), OriginFactory(name="wms")
    specs = [
        # url, origin, day offset, player id, hostexe, version, duration, bandwidth, received, lost, buffers, buffer s
        ("rtsp://p/a", gst, 0, "P1", "wmplayer.exe", "12.0", 600, 500_000, 1000, 10, 1, 3),
        ("rtsp://p/a", gst, 0, "P2", "wmplayer.exe", "12.0", 1200, 700_000, 2000, 0, 0, 0),
        ("rtsp://p/a", gst, 1, "P1", "vlc.exe", "3.0", 300, 300_000, 500, 50, 4, 9),
        ("rtsp://p/b", wms, 1, "P3", "wmplayer.exe", "11.0", 3600, 1_000_000, 9000, 90, 2, 5),
        ("rtsp://p/b", None, 2, "", "wmplayer.exe", "11.0", 60, None, 100, None, 0, 0),
    ]
    for url, origin, day, player, exe, version, duration, bw, received, lost, buffers, buffer_s in specs:
        PlayLogFactory(node=node, url=url, origin=origin, logged_at=BASE_TIME + dt.timedelta(days=day),
                       c_playerid=player, c_hostexe=exe, c_playerversion=version, x_duration=duration,
                       avgbandwidth=bw, c_pkts_received=received, c_pkts_lost_client=lost,
                       c_buffercount=buffers, c_totalbuffertime=buffer_s)
    PlayLogFactory(node=node, kind="logconnect", url="rtsp://p/a", x_duration=None)  # never a play
    return specs


def expected(specs, key):
    groups = defaultdict(list)
    for spec in specs:
        groups[key(spec)].append(spec)
    result = {}
    for name, items in groups.items():
        received = sum(s[8] for s in items)
        lost = sum(s[9] or 0 for s in items)
        bandwidths = [s[7] for s in items if s[7] is not None]
        result[name] = {
            "plays": len(items),
            "unique_players": len({s[3] for s in items if s[3]}),
            "hours_watched": sum(s[6] for s in items) / 3600,
            "avg_bandwidth_bps": sum(bandwidths) / len(bandwidths) if bandwidths else None,
            "packets_received": received, "packets_lost": lost,
            "loss_ratio": lost / (received + lost) if received + lost else None,
            "buffer_count": sum(s[10] for s in items), "buffer_seconds": sum(s[11] for s in items),
        }
    return result


def check(actual_rows, key_of, wanted):
    assert len(actual_rows) == len(wanted)
    for row in actual_rows:
        want = wanted[key_of(row)]
        for metric, value in want.items():
            assert row[metric] == pytest.approx(value), (key_of(row), metric)
    plays = [row["plays"] for row in actual_rows]
    assert plays == sorted(plays, reverse=True)


def test_by_content(viewer_client, rows):
    body = viewer_client.get(f"{URL}by-content/").json()
    check(body["results"], lambda r: r["url"], expected(rows, lambda s: s[0]))


def test_by_day(viewer_client, rows):
    body = viewer_client.get(f"{URL}by-day/").json()
    check(body["results"], lambda r: r["day"],
          expected(rows, lambda s: (BASE_TIME + dt.timedelta(days=s[2])).date().isoformat()))


def test_by_player_software(viewer_client, rows):
    body = viewer_client.get(f"{URL}by-player-software/").json()
    check(body["results"], lambda r: (r["c_hostexe"], r["c_playerversion"]), expected(rows, lambda s: (s[4], s[5])))


def test_by_origin(viewer_client, rows):
    body = viewer_client.get(f"{URL}by-origin/").json()
    check(body["results"], lambda r: r["origin__name"], expected(rows, lambda s: s[1].name if s[1] else None))


def test_reports_accept_playlog_filters(viewer_client, rows):
    since = (BASE_TIME + dt.timedelta(days=1)).isoformat()
    body = viewer_client.get(f"{URL}by-content/", {"since": since}).json()
    check(body["results"], lambda r: r["url"], expected([s for s in rows if s[2] >= 1], lambda s: s[0]))
    assert viewer_client.get(f"{URL}by-day/", {"since": "garbage"}).status_code == 400


def test_index_and_permissions(anon_client, norole_client, viewer_client):
    assert anon_client.get(f"{URL}by-day/").status_code == 401
    assert norole_client.get(f"{URL}by-day/").status_code == 403
    index = viewer_client.get(URL).json()
    assert set(index) == {"by-content", "by-day", "by-player-software", "by-origin"}
    assert viewer_client.get(f"{URL}by-nothing/").status_code == 404


def test_report_on_empty_table(viewer_client):
    body = viewer_client.get(f"{URL}by-content/").json()
    assert body["count"] == 0 and body["results"] == []
