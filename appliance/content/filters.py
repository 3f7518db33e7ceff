import django_filters

from appliance.content.models import CachedContent, ContentState


class CachedContentFilterSet(django_filters.FilterSet):
    url = django_filters.CharFilter(lookup_expr="icontains")
    state = django_filters.MultipleChoiceFilter(choices=ContentState.choices)
    expires_before = django_filters.IsoDateTimeFilter(field_name="expires_at", lookup_expr="lt")
    expires_after = django_filters.IsoDateTimeFilter(field_name="expires_at", lookup_expr="gte")

    class Meta:
        model = CachedContent
        fields = ["url", "state", "node", "origin"]
