"""Report roll-ups folded by the real Celery worker's beat (playback.fold_rollups), no report read needed."""

import pytest
from django.db.models import Sum
from django.utils import timezone

from appliance.control.services import report_batch_ingest
from appliance.playback.models import PlayLog, ReportCell, RollupPending
from appliance.playback.reports import playlog_report
from tests.appliance.factories import ProxyNodeFactory
from tests.appliance.playback.test_rollups import playlog_event
from tests.appliance.tasks.harness import wait_until

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def test_beat_folds_ingested_play_logs_into_the_rollups(celery_worker_process):
    node = ProxyNodeFactory()
    info = {"name": node.name, "version": "0.1.0", "listen": "127.0.0.1:8554", "load": {}}
    events = [playlog_event(seq, f"P{seq % 7}", seq % 3, 10 * seq) for seq in range(1, 251)]
    for start in range(0, len(events), 50):  # several committed batches, 250 rows: three fold transactions
        report_batch_ingest(node=node, node_info=info, events=events[start:start + 50], now=timezone.now())
    assert PlayLog.objects.count() == 250

    def folded():
        cells = ReportCell.objects.filter(grain="c").aggregate(plays=Sum("plays"), players=Sum("players"))
        return not RollupPending.objects.exists() and cells["plays"] == 250 and cells

    cells = wait_until(folded, timeout=60, what="beat's playback.fold_rollups")
    raw = list(playlog_report(group="by-content", playlogs=PlayLog.objects.all()))
    assert [cells["plays"], cells["players"]] == [raw[0]["plays"], raw[0]["unique_players"]] == [250, 7]
    days = ReportCell.objects.filter(grain="d").values_list("day", "plays").order_by("day")
    assert [plays for _, plays in days] == [83, 84, 83]  # seq % 3 days, each row once
