from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from appliance.core.audit import Actor
from appliance.uplink.filters import UplinkEventFilterSet
from appliance.uplink.models import UplinkEvent
from appliance.uplink.selectors import uplink_event_list
from appliance.uplink.services import uplink_retry


class UplinkEventSerializer(serializers.ModelSerializer):
    origin = serializers.SlugRelatedField(slug_field="name", read_only=True)
    node = serializers.SlugRelatedField(slug_field="name", read_only=True)
    session = serializers.SlugRelatedField(slug_field="session_id", read_only=True)

    class Meta:
        model = UplinkEvent
        fields = ["id", "origin", "node", "session", "source_event_id", "url", "player_url", "event_type",
                  "body", "state", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at"]


class UplinkEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The outbox of SendEvent requests waiting for (or done with) delivery to origins."""

    queryset = uplink_event_list()
    serializer_class = UplinkEventSerializer
    filterset_class = UplinkEventFilterSet
    ordering_fields = ["id", "created_at", "next_attempt_at", "attempts", "sent_at"]
    ordering = ["id"]
    lookup_value_regex = r"\d+"

    @extend_schema(request=None, responses=UplinkEventSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        event = uplink_retry(event=self.get_object(), actor=Actor.from_request(request), now=timezone.now())
        return Response(self.get_serializer(event).data)
