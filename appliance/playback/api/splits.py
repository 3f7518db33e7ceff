from rest_framework import mixins, serializers, viewsets

from appliance.playback.filters import LiveSplitFilterSet
from appliance.playback.models import LiveSplit
from appliance.playback.selectors import split_list


class LiveSplitSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", read_only=True)
    origin = serializers.SlugRelatedField(slug_field="name", read_only=True)
    live = serializers.BooleanField(read_only=True)

    class Meta:
        model = LiveSplit
        fields = ["id", "node", "split_id", "origin", "url", "player_url", "state", "live", "players",
                  "peak_players", "reconnects", "media_stalls", "origin_transport", "started_at", "ended_at",
                  "end_reason", "packets_in", "bytes_in", "updated_at"]


class LiveSplitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Live splits (one origin session shared by a node's players of a live URL), from split.changed
    reports. `?live=true`: not ended."""

    queryset = split_list()
    serializer_class = LiveSplitSerializer
    filterset_class = LiveSplitFilterSet
    ordering_fields = ["started_at", "ended_at", "players", "peak_players", "reconnects", "updated_at"]
    ordering = ["-started_at", "-id"]
    lookup_value_regex = r"\d+"
