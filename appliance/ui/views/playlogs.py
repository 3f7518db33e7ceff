import csv

from django.conf import settings
from django.http import Http404, StreamingHttpResponse
from django.views.generic import TemplateView

from appliance.core.pagination import CappedCountPaginator
from appliance.playback.filters import PlayLogFilterSet
from appliance.playback.reports import REPORT_GROUPS, playlog_report
from appliance.playback.selectors import playlog_list
from appliance.ui.mixins import FilteredListView, ViewerRequiredMixin

REPORT_TITLES = {"by-content": "By content", "by-day": "By day", "by-player-software": "By player software",
                 "by-origin": "By origin"}
METRICS = ["plays", "unique_players", "hours_watched", "avg_bandwidth_bps", "loss_ratio", "buffer_count",
           "buffer_seconds"]
REPORT_ROWS = 500  # a page of a report; the CSV has every row


class PlayLogListView(FilteredListView):
    template_name = "ui/playlog_list.html"
    filterset_class = PlayLogFilterSet

    def base_queryset(self):
        return playlog_list().order_by("-logged_at", "-pk")

    def get_paginator(self, queryset, per_page, orphans=0, allow_empty_first_page=True, **kwargs):
        return CappedCountPaginator(queryset, per_page, orphans=orphans, allow_empty_first_page=allow_empty_first_page,
                                    count_cap=settings.APPLIANCE_PLAYLOG_COUNT_MAX)


class _Echo:
    def write(self, value):
        return value


class ReportView(ViewerRequiredMixin, TemplateView):
    """Play-log aggregates, filtered with the play-log FilterSet; `?format=csv` downloads the table."""

    template_name = "ui/reports.html"

    def report(self):
        group = self.request.GET.get("group", "by-content")
        if group not in REPORT_GROUPS:
            raise Http404("unknown report")
        filterset = PlayLogFilterSet(self.request.GET or None, queryset=playlog_list(), request=self.request)
        playlogs = filterset.qs if filterset.is_bound and filterset.is_valid() else playlog_list()
        return group, filterset, playlog_report(group=group, playlogs=playlogs)

    def get(self, request, *args, **kwargs):
        group, filterset, rows = self.report()
        if request.GET.get("format") == "csv":
            keys = list(REPORT_GROUPS[group])
            writer = csv.writer(_Echo())
            lines = (writer.writerow([row[k] for k in keys + METRICS]) for row in rows.iterator())
            response = StreamingHttpResponse((line for part in ([writer.writerow(keys + METRICS)], lines)
                                              for line in part), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="report-{group}.csv"'
            return response
        context = self.get_context_data(group=group, groups=REPORT_TITLES, keys=REPORT_GROUPS[group],
                                        metrics=METRICS, rows=rows[:REPORT_ROWS], filter_form=filterset.form)
        query = request.GET.copy()
        query["format"] = "csv"
        context["csv_query"] = query.urlencode()
        return self.render_to_response(context)
