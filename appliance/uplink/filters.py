import django_filters

from appliance.uplink.models import UplinkEvent, UplinkState


class UplinkEventFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=UplinkState.choices)

    class Meta:
        model = UplinkEvent
        fields = ["state", "event_type", "origin", "node"]
