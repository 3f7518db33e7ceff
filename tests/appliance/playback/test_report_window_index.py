"""Reports over a time window the roll-ups cannot answer (not at local midnight) read the raw play logs: the
window's covering index must hold every column each group's report reads, so the report never visits the heap
(at 10M rows a day's rows lie on most heap pages: 0.7-0.9 s per report without it)."""
import datetime as dt

import pytest
from django.db import connection

from appliance.playback.models import PlayLog
from appliance.playback.reports import REPORT_GROUPS, PagedContentReport, playlog_report
from tests.appliance.factories import BASE_TIME, OriginFactory, PlayLogFactory, ProxyNodeFactory

pytestmark = [pytest.mark.django_db(transaction=True)]  # VACUUM: the visibility map


@pytest.fixture
def playlogs():
    """Rows over 3,000 hours, analysed, so the planner chooses as it does for millions: a 3-hour window is
    read by its range on logged_at."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL plans")
    origins, nodes = [OriginFactory(name="gst"), OriginFactory(name="wms")], [ProxyNodeFactory(), ProxyNodeFactory()]
    PlayLog.objects.bulk_create(
        PlayLogFactory.build(origin=origins[h % 2], node=nodes[h % 2], url=f"rtsp://p/c{h % 50}",
                             logged_at=BASE_TIME - dt.timedelta(hours=h), c_hostexe=f"player{h % 3}")
        for h in range(3000))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE playback_playlog")
    return PlayLog.objects.all()


@pytest.mark.parametrize("group", [*sorted(REPORT_GROUPS), "by-content ranking"])
@pytest.mark.parametrize("filtered_by", ["", "origin", "node"])
def test_window_reports_are_index_only_scans(playlogs, group, filtered_by):
    since = BASE_TIME - dt.timedelta(hours=100, minutes=30)
    window = playlogs.filter(logged_at__gte=since, logged_at__lt=since + dt.timedelta(hours=3))
    if filtered_by:
        window = window.filter(**{filtered_by: getattr(window.first(), filtered_by)})
    # the raw by-content report ranks the urls first (reports.PagedContentReport), then reads a page's urls
    report = (PagedContentReport(window).ranking if group == "by-content ranking"
              else playlog_report(group=group, playlogs=window))
    with connection.cursor() as cursor:
        # a few thousand rows: scanning them all would cost about as little as any index
        for setting in ("enable_seqscan", "enable_bitmapscan"):
            cursor.execute(f"SET {setting} = off")
        sql, params = report.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for setting in ("enable_seqscan", "enable_bitmapscan"):
            cursor.execute(f"RESET {setting}")
    assert "Index Only Scan using playlog_report_window" in plan, plan
    assert sum(row["plays"] for row in report) == window.count() >= 1
