from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from appliance.core.audit import Actor
from appliance.playback.filters import StreamSessionFilterSet
from appliance.playback.models import StreamSession
from appliance.playback.selectors import session_list
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


class StreamSessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = session_list()
    serializer_class = StreamSessionSerializer
    filterset_class = StreamSessionFilterSet
    ordering_fields = ["started_at", "ended_at", "bytes_out", "packets_lost", "updated_at"]
    ordering = ["-started_at", "-id"]
    lookup_value_regex = r"\d+"

    @extend_schema(request=None, responses={202: StreamSessionSerializer})
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        session = session_terminate(session=self.get_object(), actor=Actor.from_request(request))
        return Response(self.get_serializer(session).data, status=status.HTTP_202_ACCEPTED)
