import datetime as dt

import django_filters
from django import forms
from django.conf import settings
from django.utils import timezone

from appliance.history.models import GRAIN_SECONDS, Grain, TrafficBucket

# preset -> (length, grain): the dashboard's 1 h / 24 h / 7 d / 30 d views
PRESETS = {
    "1h": (dt.timedelta(hours=1), Grain.MINUTE),
    "24h": (dt.timedelta(hours=24), Grain.HOUR),
    "7d": (dt.timedelta(days=7), Grain.HOUR),
    "30d": (dt.timedelta(days=30), Grain.DAY),
}
PRESET_LABELS = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}


class TrafficFilterSet(django_filters.FilterSet):
    """History points: the API (/api/v1/history/) and the dashboard charts read through this one.

    `range` (1h, 24h, 7d, 30d) picks since and a grain; explicit `since`/`until`/`grain` override it.
    A range holding more than APPLIANCE_HISTORY_MAX_POINTS buckets is refused (400)."""

    range = django_filters.ChoiceFilter(
        choices=list(PRESET_LABELS.items()),
        method="filter_nothing",
        label="preset range",
        empty_label="custom",
    )
    grain = django_filters.ChoiceFilter(choices=Grain.choices, method="filter_nothing", label="bucket size")
    since = django_filters.IsoDateTimeFilter(method="filter_nothing", label="from (inclusive)")
    until = django_filters.IsoDateTimeFilter(method="filter_nothing", label="to (exclusive)")

    class Meta:
        model = TrafficBucket
        fields = ["range", "grain", "since", "until", "node"]

    def filter_nothing(self, queryset, name, value):
        return queryset  # applied together in filter_queryset, after the window is known

    def window(self) -> tuple[str, dt.datetime, dt.datetime]:
        """(grain, since, until) of a valid filterset."""
        data = self.form.cleaned_data
        length, grain = PRESETS[data.get("range") or "1h"]
        until = data.get("until") or timezone.now()
        since = data.get("since") or until - length
        return data.get("grain") or grain, since, until

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        grain, since, until = self.window()
        return queryset.filter(
            grain=grain, start__gte=since - dt.timedelta(seconds=GRAIN_SECONDS[grain] - 1), start__lt=until
        )

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        grain, since, until = self.window()
        if since >= until:
            self.form.add_error("until", "Must be after since.")
            return False
        points = (until - since).total_seconds() / GRAIN_SECONDS[grain]
        if points > settings.APPLIANCE_HISTORY_MAX_POINTS:
            self.form.add_error(
                "grain",
                forms.ValidationError(
                    f"This range holds {points:.0f} {grain} buckets; "
                    f"at most {settings.APPLIANCE_HISTORY_MAX_POINTS}: "
                    "choose a larger grain or a shorter range."
                ),
            )
            return False
        return True
