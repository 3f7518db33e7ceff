import django_filters

from appliance.origins.models import Origin


class OriginFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Origin
        fields = ["name", "allowed", "cache_policy", "transport", "live"]
