import csv

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.generic import TemplateView

from appliance.core.pagination import CappedCountPaginator
from appliance.playback.filters import PlayLogFilterSet, StreamSessionFilterSet
from appliance.playback.report_selectors import report_rows
from appliance.playback.reports import REPORT_GROUPS
from appliance.playback.selectors import playlog_list, session_qos_list
from appliance.ui import report_table
from appliance.ui.mixins import FilteredListView, ViewerRequiredMixin


class PlayLogListView(FilteredListView):
    template_name = "ui/playlog_list.html"
    filterset_class = PlayLogFilterSet

    def base_queryset(self):
        return playlog_list().order_by("-logged_at", "-pk")

    def get_paginator(self, queryset, per_page, orphans=0, allow_empty_first_page=True, **kwargs):
        return CappedCountPaginator(queryset, per_page, orphans=orphans,
                                    allow_empty_first_page=allow_empty_first_page,
                                    count_cap=settings.APPLIANCE_PLAYLOG_COUNT_MAX,
                                    deepest_row=settings.APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS)


class _Echo:
    def write(self, value):
        return value


def csv_response(filename: str, header: list[str], cells: list[list[str]]) -> HttpResponse:
    writer = csv.writer(_Echo())
    lines = [writer.writerow([report_table.csv_safe(v) for v in row]) for row in [header, *cells]]
    response = HttpResponse("".join(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ReportView(ViewerRequiredMixin, TemplateView):
    """Play-log reports: the API's selector and FilterSet, date presets, a chart above the table, and
    `?format=csv` for the same cells. Invalid filters answer 400 with the errors (as the API does)."""

    template_name = "ui/reports.html"

    def query(self):
        """The request's parameters with a preset (today / 7 days / 30 days) turned into since/until."""
        query = self.request.GET.copy()
        preset = query.get("preset") or ("custom" if query.get("since") or query.get("until") else "7d")
        window = report_table.preset_window(preset)
        if window is not None:
            query["since"], query["until"] = (t.isoformat() for t in window)
        query["preset"] = preset
        return query, preset

    def get(self, request, *args, **kwargs):
        group = request.GET.get("group", "by-content")
        if group not in REPORT_GROUPS:
            raise Http404("unknown report")
        query, preset = self.query()
        filterset = PlayLogFilterSet(query, queryset=playlog_list().order_by(), request=request)
        valid = filterset.is_valid()
        rows = (
            report_rows(group=group, filterset=filterset)[: settings.APPLIANCE_REPORT_MAX_ROWS]
            if valid
            else []
        )
        cells = report_table.table(group, rows)
        columns = report_table.columns(group)
        if valid and request.GET.get("format") == "csv":
            return csv_response(f"report-{group}-{preset}.csv", [c.label for c in columns], cells)
        csv_query = query.copy()
        csv_query["format"] = "csv"
        context = self.get_context_data(
            group=group,
            groups=report_table.TITLES,
            presets=report_table.PRESETS,
            preset=preset,
            columns=columns,
            cells=cells,
            filter_form=filterset.form,
            csv_query=csv_query.urlencode(),
            truncated=len(rows) >= settings.APPLIANCE_REPORT_MAX_ROWS,
            max_rows=settings.APPLIANCE_REPORT_MAX_ROWS,
            chart={
                "group": group,
                "labels": [row[0] for row in cells[:20]],
                "plays": [row.get("plays") for row in rows[:20]],
                "hours": [round(row.get("hours_watched") or 0, 2) for row in rows[:20]],
            },
            body=report_table.body_html(cells, len(report_table.KEY_COLUMNS[group])),
        )
        return self.render_to_response(context, status=200 if valid else 400)


# (group, label); the CSV header is "group: label"
QOS_COLUMNS = [
    ("", "Node"),
    ("", "Session"),
    ("", "Content URL"),
    ("", "Player"),
    ("", "Served from"),
    ("", "Started"),
    ("Proxy", "packets sent"),
    ("Proxy", "lost (RTCP)"),
    ("Proxy", "loss (%)"),
    ("Proxy", "jitter (ms)"),
    ("Player", "packets received"),
    ("Player", "lost"),
    ("Player", "loss (%)"),
    ("Player", "buffering events"),
    ("Player", "buffering (s)"),
    ("Player", "bandwidth (Mbit/s)"),
    ("Player", "quality (%)"),
    ("Player", "logs"),
]
QOS_CSV_HEADER = [f"{group}: {label}" if group else label for group, label in QOS_COLUMNS]
QOS_GROUPS = [("", 6), ("Proxy (proxyd counters)", 4), ("Player (LogPlay)", 8)]


def _pct(part, whole) -> str:
    return f"{100 * part / whole:.2f}" if part is not None and whole else ""


def _num(value, scale: float = 1.0, places: int = 0) -> str:
    if value is None:
        return ""
    return f"{float(value) * scale:.{places}f}" if places else str(round(float(value) * scale))


def _float_or_none(cell: str) -> float | None:
    return float(cell) if cell else None


def qos_cells(session) -> list[str]:
    sent, lost = session.packets_out, session.packets_lost
    received, player_lost = session.player_received, session.player_lost
    return [
        session.node.name,
        session.session_id,
        session.url,
        session.player_addr,
        session.served_from,
        session.started_at.strftime("%Y-%m-%d %H:%M:%S") if session.started_at else "",
        _num(sent),
        _num(lost),
        _pct(lost, sent),
        _num(session.jitter_ms, places=1),
        _num(received),
        _num(player_lost),
        _pct(player_lost, (received or 0) + (player_lost or 0)),
        _num(session.player_buffer_count),
        _num(session.player_buffer_seconds),
        _num(session.player_bandwidth, 1e-6, 2),
        _num(session.player_quality, places=0),
        _num(session.player_logs),
    ]


class SessionQosView(FilteredListView):
    """Per session: the proxy's own counters next to what the player's LogPlay said (joined by session)."""

    template_name = "ui/session_qos.html"
    filterset_class = StreamSessionFilterSet

    def base_queryset(self):
        return session_qos_list().order_by("-started_at", "-pk")

    def render_to_response(self, context, **response_kwargs):
        if self.request.GET.get("format") == "csv":  # the page's rows, as shown
            return csv_response("session-qos.csv", QOS_CSV_HEADER, context["cells"])
        return super().render_to_response(context, **response_kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["columns"] = QOS_COLUMNS
        context["groups"] = QOS_GROUPS
        context["cells"] = [qos_cells(s) for s in context["object_list"]]
        context["chart"] = {
            "labels": [row[1][:12] for row in context["cells"]],  # the session column
            "proxy_loss": [_float_or_none(row[8]) for row in context["cells"]],
            "player_loss": [_float_or_none(row[12]) for row in context["cells"]],
        }
        query = self.request.GET.copy()
        query["format"] = "csv"
        context["csv_query"] = query.urlencode()
        return context
