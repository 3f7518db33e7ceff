from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from appliance.core.audit import Actor
from appliance.playback.filters import StreamSessionFilterSet
from appliance.playback.models import StreamSession
from appliance.playback.selectors import session_list, session_qos_list
from appliance.playback.services import session_terminate


class StreamSessionSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", read_only=True)
    origin = serializers.SlugRelatedField(slug_field="name", read_only=True)
    live = serializers.BooleanField(read_only=True)

    class Meta:
        model = StreamSession
        fields = ["id", "node", "session_id", "origin", "url", "origin_url", "player_addr", "user_agent",
                  "transports", "served_from", "live", "started_at", "ended_at", "end_reason", "bytes_out",
                  "packets_out", "bytes_in", "packets_in", "packets_lost", "jitter_ms",
                  "terminate_requested_at", "updated_at"]


class SessionQosSerializer(StreamSessionSerializer):
    """A session's proxy counters with its players' LogPlay figures (summed; bandwidth and quality
    averaged)."""

    player_logs = serializers.IntegerField(read_only=True)
    player_received = serializers.IntegerField(read_only=True, allow_null=True)
    player_lost = serializers.IntegerField(read_only=True, allow_null=True)
    player_buffer_count = serializers.IntegerField(read_only=True, allow_null=True)
    player_buffer_seconds = serializers.IntegerField(read_only=True, allow_null=True)
    player_bandwidth = serializers.FloatField(read_only=True, allow_null=True, help_text="bit/s")
    player_quality = serializers.FloatField(read_only=True, allow_null=True, help_text="%")

    class Meta(StreamSessionSerializer.Meta):
        fields = [*StreamSessionSerializer.Meta.fields, "player_logs", "player_received", "player_lost",
                  "player_buffer_count", "player_buffer_seconds", "player_bandwidth", "player_quality"]


class StreamSessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = session_list()
    serializer_class = StreamSessionSerializer
    filterset_class = StreamSessionFilterSet
    ordering_fields = ["started_at", "ended_at", "bytes_out", "packets_lost", "updated_at"]
    ordering = ["-started_at", "-id"]
    lookup_value_regex = r"\d+"

    @extend_schema(responses=SessionQosSerializer(many=True))
    @action(detail=False, url_path="qos", url_name="qos")
    def qos(self, request):
        """Sessions (the same filters) with the players' LogPlay figures next to the proxy's counters;
        the dashboard's Session quality page reads the same selector."""
        queryset = self.filter_queryset(session_qos_list())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SessionQosSerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: StreamSessionSerializer})
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        session = session_terminate(session=self.get_object(), actor=Actor.from_request(request))
        return Response(self.get_serializer(session).data, status=status.HTTP_202_ACCEPTED)
