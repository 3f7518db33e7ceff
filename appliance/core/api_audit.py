import django_filters
from rest_framework import mixins, serializers, viewsets

from appliance.core.models import AuditLog


class AuditLogFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields = ["since", "until", "action", "object_type", "object_id", "actor"]


class AuditLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = ["id", "at", "actor", "actor_name", "action", "object_type", "object_id", "changes",
                  "remote_addr"]


class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who changed what, when and from where (read-only)."""

    queryset = AuditLog.objects.all()
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilterSet
    ordering_fields = ["at", "action"]
    ordering = ["-at", "-id"]
    lookup_value_regex = r"\d+"
