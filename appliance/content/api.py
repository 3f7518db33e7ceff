from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from appliance.content import services
from appliance.content.filters import CachedContentFilterSet
from appliance.content.models import CachedContent, PrestuffRequest, PurgeRequest
from appliance.content.selectors import content_list
from appliance.core.audit import Actor
from appliance.nodes.models import ProxyNode


class CachedContentSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", read_only=True)
    origin = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = CachedContent
        fields = ["id", "url", "node", "origin", "state", "sdp", "cache_control", "last_modified", "etag",
                  "content_size", "size_bytes", "fetched_at", "expires_at", "last_revalidated_at", "hits",
                  "bytes_served", "updated_at"]


class PurgeRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = PurgeRequest
        fields = ["id", "url", "prefix", "node", "state", "created_at", "completed_at"]


class PurgeInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    prefix = serializers.BooleanField(default=False)

    def validate_url(self, value: str) -> str:
        if "://" not in value:
            raise serializers.ValidationError("Must be an absolute origin URL (or URL prefix).")
        return value


class PrestuffRequestSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = PrestuffRequest
        fields = ["id", "url", "node", "state", "created_at", "completed_at"]


class PrestuffInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    node = serializers.SlugRelatedField(slug_field="name", queryset=ProxyNode.objects.all(), required=False,
                                        allow_null=True, default=None)

    def validate_url(self, value: str) -> str:
        if not value.startswith(("rtsp://", "rtspu://", "rtsps://")):
            raise serializers.ValidationError("Must be an rtsp:// origin URL.")
        return value


RevalidateResult = inline_serializer("RevalidateResult", {"queued": serializers.BooleanField()})


class CachedContentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = content_list()
    serializer_class = CachedContentSerializer
    filterset_class = CachedContentFilterSet
    ordering_fields = ["url", "state", "size_bytes", "hits", "bytes_served", "expires_at", "fetched_at",
                       "updated_at"]
    ordering = ["url", "node_id"]
    lookup_value_regex = r"\d+"

    @extend_schema(request=None, responses={202: PurgeRequestSerializer})
    @action(detail=True, methods=["post"])
    def purge(self, request, pk=None):
        purge = services.content_purge(content=self.get_object(), actor=Actor.from_request(request))
        return Response(PurgeRequestSerializer(purge).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=PurgeInputSerializer, responses={202: PurgeRequestSerializer},
                   operation_id="content_purge_by_url")
    @action(detail=False, methods=["post"], url_path="purge", url_name="purge-url")
    def purge_by_url(self, request):
        data = PurgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        purge = services.purge_request_create(actor=Actor.from_request(request), **data.validated_data)
        return Response(PurgeRequestSerializer(purge).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: RevalidateResult})
    @action(detail=True, methods=["post"])
    def revalidate(self, request, pk=None):
        queued = services.content_revalidate(content=self.get_object(), actor=Actor.from_request(request))
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=PrestuffInputSerializer, responses={202: PrestuffRequestSerializer})
    @action(detail=False, methods=["post"])
    def prestuff(self, request):
        data = PrestuffInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prestuff = services.content_prestuff(actor=Actor.from_request(request), **data.validated_data)
        return Response(PrestuffRequestSerializer(prestuff).data, status=status.HTTP_202_ACCEPTED)
