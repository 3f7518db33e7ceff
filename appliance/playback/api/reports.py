from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from appliance.playback.filters import PlayLogFilterSet
from appliance.playback.report_selectors import report_rows
from appliance.playback.reports import REPORT_GROUPS
from appliance.playback.selectors import playlog_list


class _MetricsSerializer(serializers.Serializer):
    plays = serializers.IntegerField()
    unique_players = serializers.IntegerField()
    hours_watched = serializers.FloatField()
    avg_bandwidth_bps = serializers.FloatField(allow_null=True)
    packets_received = serializers.IntegerField()
    packets_lost = serializers.IntegerField()
    loss_ratio = serializers.FloatField(allow_null=True)
    buffer_count = serializers.IntegerField()
    buffer_seconds = serializers.IntegerField()


class ByContentRowSerializer(_MetricsSerializer):
    url = serializers.CharField()


class ByDayRowSerializer(_MetricsSerializer):
    day = serializers.DateField()


class ByPlayerSoftwareRowSerializer(_MetricsSerializer):
    c_hostexe = serializers.CharField()
    c_playerversion = serializers.CharField()


class ByOriginRowSerializer(_MetricsSerializer):
    origin_id = serializers.IntegerField(allow_null=True)
    origin__name = serializers.CharField(allow_null=True)


class ReportViewSet(viewsets.GenericViewSet):
    """Play-log aggregates; every report accepts the play-log filters (since, until, url, player, origin...)."""

    queryset = playlog_list()
    filterset_class = PlayLogFilterSet
    serializer_class = _MetricsSerializer
    filter_backends = [DjangoFilterBackend]  # ordering is fixed: most plays first

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, description="Links to every report.")
    def list(self, request):
        return Response({name: reverse(f"report-{name}", request=request) for name in REPORT_GROUPS})

    def _report(self, request, group: str, row_serializer):
        filterset = DjangoFilterBackend().get_filterset(request, playlog_list().order_by(), self)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        rows = report_rows(group=group, filterset=filterset)
        # on PostgreSQL read a page at a time, the number of rows from the same statement (paged_rows.PagedRows)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(row_serializer(page, many=True).data)

    @extend_schema(responses=ByContentRowSerializer(many=True))
    @action(detail=False, url_path="by-content", url_name="by-content")
    def by_content(self, request):
        return self._report(request, "by-content", ByContentRowSerializer)

    @extend_schema(responses=ByDayRowSerializer(many=True))
    @action(detail=False, url_path="by-day", url_name="by-day")
    def by_day(self, request):
        return self._report(request, "by-day", ByDayRowSerializer)

    @extend_schema(responses=ByPlayerSoftwareRowSerializer(many=True))
    @action(detail=False, url_path="by-player-software", url_name="by-player-software")
    def by_player_software(self, request):
        return self._report(request, "by-player-software", ByPlayerSoftwareRowSerializer)

    @extend_schema(responses=ByOriginRowSerializer(many=True))
    @action(detail=False, url_path="by-origin", url_name="by-origin")
    def by_origin(self, request):
        return self._report(request, "by-origin", ByOriginRowSerializer)
