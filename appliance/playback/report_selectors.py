"""The one read path for play-log reports: /api/v1/reports/ and the dashboard's Reports page both call it,
so both show the same numbers."""

from __future__ import annotations

from collections.abc import Sequence

from appliance.playback.filters import PlayLogFilterSet
from appliance.playback.reports import playlog_report_rows
from appliance.playback.rollup_reports import rollup_report


def report_rows(*, group: str, filterset: PlayLogFilterSet) -> Sequence[dict]:
    """Rows of report `group` for a valid filterset: from the roll-ups when its filters allow (read a page at
    a time when sliced), else the raw aggregate over the filtered play logs (the same expressions, so the
    same numbers)."""
    rows = rollup_report(group=group, filters=filterset.form.cleaned_data)
    return rows if rows is not None else playlog_report_rows(group=group, playlogs=filterset.qs)
