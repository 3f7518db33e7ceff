import django_filters
from django.utils import timezone
from rest_framework import mixins, serializers, viewsets

from appliance.nodes.models import ProxyNode
from appliance.nodes.selectors import node_list


class ProxyNodeFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ProxyNode
        fields = ["name", "enabled"]


class ProxyNodeSerializer(serializers.ModelSerializer):
    online = serializers.BooleanField(read_only=True,
                                      help_text="seen within APPLIANCE_NODE_OFFLINE_SECONDS seconds")

    class Meta:
        model = ProxyNode
        fields = ["id", "name", "version", "listen", "rtsp_address", "last_seen", "online", "load_sessions",
                  "load_bandwidth_bps", "enabled", "created_at", "cache_disk_full"]


class ProxyNodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Nodes register through `manage.py proxyd_node_create`; the API shows them and their load."""

    queryset = ProxyNode.objects.none()  # get_queryset: `online` depends on the time of the request
    serializer_class = ProxyNodeSerializer
    filterset_class = ProxyNodeFilterSet
    ordering_fields = ["name", "last_seen", "load_sessions", "load_bandwidth_bps"]
    ordering = ["name"]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return node_list(now=timezone.now())
