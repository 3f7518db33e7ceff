import ipaddress

import django_filters
from django import forms
from django.db.models import Q

from appliance.playback.models import LiveSplit, PlayLog, ServedFrom, SplitState, StreamSession


class StreamSessionFilterSet(django_filters.FilterSet):
    live = django_filters.BooleanFilter(method="filter_live", label="still running")
    url = django_filters.CharFilter(lookup_expr="icontains", label="URL contains")
    player = django_filters.CharFilter(method="filter_player", label="player address or user agent")
    served_from = django_filters.ChoiceFilter(choices=ServedFrom.choices, label="served from")
    started_after = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte",
                                                     label="started from (ISO 8601, inclusive)")
    started_before = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt",
                                                      label="started before (ISO 8601)")

    class Meta:
        model = StreamSession
        fields = ["live", "url", "player", "served_from", "node", "origin", "end_reason"]

    def filter_live(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(ended_at__isnull=value)

    def filter_player(self, queryset, name, value):
        return queryset.filter(Q(player_addr__startswith=value) | Q(user_agent__icontains=value))


class LiveSplitFilterSet(django_filters.FilterSet):
    """Splits: the API (/api/v1/splits/) and the dashboard's splits page filter with this one."""

    live = django_filters.BooleanFilter(method="filter_live", label="not ended")
    url = django_filters.CharFilter(method="filter_url", label="origin or player-facing URL contains")
    state = django_filters.ChoiceFilter(choices=SplitState.choices)

    class Meta:
        model = LiveSplit
        fields = ["live", "url", "state", "node", "origin", "origin_transport", "end_reason"]

    def filter_live(self, queryset, name, value):
        if value is None:
            return queryset
        ended = Q(state=SplitState.ENDED)
        return queryset.exclude(ended) if value else queryset.filter(ended)

    def filter_url(self, queryset, name, value):
        return queryset.filter(Q(url__icontains=value) | Q(player_url__icontains=value))


class PlayLogFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="logged_at", lookup_expr="gte",
                                             label="from (ISO 8601 date and time, inclusive)")
    until = django_filters.IsoDateTimeFilter(field_name="logged_at", lookup_expr="lt",
                                             label="until (ISO 8601 date and time, exclusive)")
    url = django_filters.CharFilter(method="filter_url", label="content URL (player-facing or cs-uri-stem)")
    player = django_filters.CharFilter(method="filter_player",
                                       label="player (IP address, address:port or player id)")
    # a text box, not a <select> of every session (one per play: millions on a busy control plane)
    session = django_filters.ModelChoiceFilter(queryset=StreamSession.objects.all(), widget=forms.TextInput,
                                               label="session (id)")

    class Meta:
        model = PlayLog
        fields = ["since", "until", "url", "player", "origin", "node", "session", "kind", "log_type"]

    def filter_url(self, queryset, name, value):
        return queryset.filter(Q(url=value) | Q(cs_uri_stem=value) | Q(url__startswith=value))

    def filter_player(self, queryset, name, value):
        condition = Q(c_playerid=value) | Q(player_addr__startswith=value)
        if _is_ip(value):
            condition |= Q(c_ip=value)
        return queryset.filter(condition)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
