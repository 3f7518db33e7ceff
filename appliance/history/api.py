from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from appliance.history.filters import TrafficFilterSet
from appliance.history.selectors import traffic_buckets, traffic_series


class TrafficPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    bytes_out = serializers.IntegerField(help_text="bytes sent to players")
    origin_bytes = serializers.IntegerField(help_text="bytes received from origins")
    cache_bytes_out = serializers.IntegerField(help_text="bytes sent to players from the cache")
    requests = serializers.IntegerField(help_text="sessions started")
    cache_requests = serializers.IntegerField(help_text="sessions started that were served from the cache")
    errors = serializers.IntegerField(help_text="sessions and live splits ended by an origin error")
    sessions = serializers.IntegerField(
        help_text="sessions open during the bucket (largest minute, nodes summed)"
    )
    players = serializers.IntegerField(help_text="distinct player addresses (largest minute, nodes summed)")
    spool_bytes = serializers.IntegerField(help_text="largest report spool (nodes summed)")
    bandwidth_out_bps = serializers.FloatField()
    bandwidth_in_bps = serializers.FloatField(help_text="from origins")
    hit_ratio_requests = serializers.FloatField(allow_null=True, help_text="0-1; null without requests")
    hit_ratio_bytes = serializers.FloatField(allow_null=True, help_text="0-1; null without bytes out")


class TrafficHistorySerializer(serializers.Serializer):
    grain = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    points = TrafficPointSerializer(many=True)


class TrafficHistoryViewSet(viewsets.GenericViewSet):
    """Traffic per minute, hour or day (all nodes summed, or `node=`), from the history roll-ups."""

    queryset = traffic_buckets()
    filterset_class = TrafficFilterSet
    serializer_class = TrafficHistorySerializer
    filter_backends = [DjangoFilterBackend]
    pagination_class = None

    @extend_schema(responses=TrafficHistorySerializer)
    def list(self, request):
        filterset = DjangoFilterBackend().get_filterset(request, traffic_buckets(), self)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        grain, since, until = filterset.window()
        points = traffic_series(buckets=filterset.qs, grain=grain)
        return Response(
            TrafficHistorySerializer({"grain": grain, "since": since, "until": until, "points": points}).data
        )
