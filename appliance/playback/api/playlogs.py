import csv
import datetime as dt
from functools import cached_property

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, renderers, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.settings import ISO_8601, api_settings

from appliance.core.api import CappedCountPagination
from appliance.playback.filters import PlayLogFilterSet
from appliance.playback.models import PlayLog
from appliance.playback.selectors import playlog_rows
from appliance.playback.wmlog_fields import WMLOG_FIELDS

BASE_COLUMNS = ["id", "node", "session", "origin", "received_at", "logged_at", "kind", "log_type", "url",
                "player_addr", "user_agent", "parse_error"]
WMLOG_COLUMNS = [field.column for field in WMLOG_FIELDS]


class PlayLogSerializer(serializers.ModelSerializer):
    node = serializers.CharField(source="node_name", read_only=True)
    origin = serializers.CharField(source="origin_name", read_only=True)
    session = serializers.CharField(source="session_public_id", read_only=True)

    class Meta:
        model = PlayLog
        fields = BASE_COLUMNS + WMLOG_COLUMNS

    @cached_property
    def plain_fields(self) -> list[tuple[str, str, object]]:
        """(output name, attribute, to_representation) of every field: each reads one plain attribute."""
        return [(f.field_name, f.source_attrs[0], _fast_representation(f)) for f in self.fields.values()
                if not f.write_only]

    def to_representation(self, instance):
        """ModelSerializer's output without its per-field lookup machinery (64 fields x 1,000 rows was most
        of a 1,000-row page's time); the many=True child is one instance, so plain_fields is built once."""
        return {name: None if (value := getattr(instance, attr)) is None else represent(value)
                for name, attr, represent in self.plain_fields}


def _fast_representation(field: serializers.Field):
    """field.to_representation, or for an ISO 8601 DateTimeField in the current zone the same text with the
    zone looked up once (DRF looks it up for every value: a third of a 1,000-row page's time)."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if (not isinstance(field, serializers.DateTimeField) or hasattr(field, "timezone") or output_format is None
            or output_format.lower() != ISO_8601 or (zone := field.default_timezone()) is None):
        return field.to_representation

    def iso(value):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            return field.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso


class PlayLogDetailSerializer(PlayLogSerializer):
    class Meta(PlayLogSerializer.Meta):
        fields = [*PlayLogSerializer.Meta.fields, "raw"]


class CSVRenderer(renderers.BaseRenderer):
    """Selects the CSV branch (?format=csv); the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b""  # never used for data: list() streams CSV, errors switch back to JSON


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(["node", "session", "origin", *BASE_COLUMNS[4:], *WMLOG_COLUMNS])
    columns = ["node__name", "session__session_id", "origin__name", *BASE_COLUMNS[4:], *WMLOG_COLUMNS]
    for row in queryset.values_list(*columns).iterator(chunk_size=2000):
        yield writer.writerow(["" if value is None else value for value in row])


class PlayLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = playlog_rows()
    serializer_class = PlayLogSerializer
    filterset_class = PlayLogFilterSet
    ordering_fields = ["logged_at", "received_at", "x_duration", "avgbandwidth", "c_ip"]
    ordering = ["-logged_at", "-id"]
    lookup_value_regex = r"\d+"
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CSVRenderer]
    pagination_class = CappedCountPagination

    def get_serializer_class(self):
        return PlayLogDetailSerializer if self.action == "retrieve" else PlayLogSerializer

    def get_renderers(self):
        # CSV is only a representation of the list; everything else stays JSON/HTML.
        if self.action in ("list", "export"):
            return super().get_renderers()
        return [renderers.JSONRenderer(), renderers.BrowsableAPIRenderer()]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(getattr(self.request, "accepted_renderer", None), CSVRenderer):
            self.request.accepted_renderer = renderers.JSONRenderer()
            self.request.accepted_media_type = "application/json"
        return response

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) == "csv":
            return self._csv_response(request)
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request):
        return self._csv_response(request)

    def _csv_response(self, request):
        queryset = self.filter_queryset(self.get_queryset())[: settings.APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS]
        response = StreamingHttpResponse(_csv_rows(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="playlogs.csv"'
        return response
