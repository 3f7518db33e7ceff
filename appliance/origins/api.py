
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from appliance.core.audit import Actor
from appliance.nodes.models import ProxyNode
from appliance.origins import services
from appliance.origins.filters import OriginFilterSet
from appliance.origins.models import Origin
from appliance.origins.player_credentials import PlayerAccount
from appliance.origins.selectors import origin_list, player_usernames
from appliance.origins.urls import clean_origin_url


NODES_HELP = "names of the nodes that serve this origin; empty: every node"


class OriginSerializer(serializers.ModelSerializer):
    has_credentials = serializers.SerializerMethodField()
    player_usernames = serializers.SerializerMethodField(help_text="players allowed when player_access is "
                                                         "basic or digest (their passwords are never shown)")
    nodes = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name", help_text=NODES_HELP)

    class Meta:
        model = Origin
        fields = ["id", "name", "base_url", "route_prefix", "allowed", "username", "has_credentials",
                  "cache_policy", "cache_ttl", "stale_if_error", "transport", "live", "split", "tls_verify",
                  "nodes", "player_access", "player_realm", "player_usernames", "created_at", "updated_at"]

    def get_has_credentials(self, obj) -> bool:
        return bool(obj.username or obj.has_password)

    def get_player_usernames(self, obj) -> list[str]:
        return player_usernames(obj)


class PlayerAccountSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=255, trim_whitespace=False)
    password = serializers.CharField(max_length=255, write_only=True, trim_whitespace=False)


class OriginInputSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=255)
    nodes = serializers.SlugRelatedField(many=True, required=False, slug_field="name",
                                         queryset=ProxyNode.objects.all(), help_text=NODES_HELP)
    player_credentials = PlayerAccountSerializer(
        many=True, required=False, write_only=True,
        help_text="the players allowed when player_access is basic or digest, replacing the stored ones "
                  "(stored only as hashes); omitted: kept")

    class Meta:
        model = Origin
        fields = ["name", "base_url", "route_prefix", "allowed", "username", "password", "cache_policy",
                  "cache_ttl", "stale_if_error", "transport", "live", "split", "tls_verify", "nodes",
                  "player_access", "player_realm", "player_credentials"]
        # Uniqueness is enforced by the service so both the API and the UI get the same error.
        extra_kwargs = {"name": {"validators": []}, "route_prefix": {"validators": []}}

    def validate_base_url(self, value: str) -> str:
        try:
            return clean_origin_url(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_route_prefix(self, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise serializers.ValidationError("Must start with '/' and contain no spaces.")
        return value.rstrip("/") or "/"

    def validate_player_credentials(self, value: list[dict]) -> list[PlayerAccount]:
        return [PlayerAccount(item["username"], item["password"]) for item in value]


class OriginViewSet(viewsets.ModelViewSet):
    queryset = origin_list()
    serializer_class = OriginSerializer
    filterset_class = OriginFilterSet
    ordering_fields = ["name", "route_prefix", "created_at", "updated_at"]
    ordering = ["name"]

    def get_serializer_class(self):
        return OriginInputSerializer if self.action in ("create", "update", "partial_update") else OriginSerializer

    def create(self, request, *args, **kwargs):
        data = OriginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        origin = services.origin_create(actor=Actor.from_request(request), **data.validated_data)
        return Response(OriginSerializer(origin).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        origin = self.get_object()
        data = OriginInputSerializer(origin, data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        origin = services.origin_update(origin=origin, actor=Actor.from_request(request), **data.validated_data)
        return Response(OriginSerializer(origin).data)

    def destroy(self, request, *args, **kwargs):
        services.origin_delete(origin=self.get_object(), actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
