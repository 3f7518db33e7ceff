"""Versioned (v1) request schema for report batches; see docs/architecture.md."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

SCHEMA_VERSION = 1
EVENT_KINDS = ("session.started", "session.counters", "session.ended", "cache.changed", "playlog", "sendevent",
               "split.changed")


class LoadSerializer(serializers.Serializer):
    sessions = serializers.IntegerField(min_value=0, required=False, default=0)
    bandwidth_bps = serializers.IntegerField(min_value=0, required=False, default=0)
    cache_disk_full = serializers.BooleanField(required=False, default=False)  # its last fill found no space


class NodeInfoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    version = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    listen = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    load = LoadSerializer(required=False)
    reporter = serializers.DictField(required=False)  # proxyd's report drop counters and spool size


MAX_SEQ = 2**63 - 1


def _well_formed_event(data) -> dict | None:
    """The validated event when it has exactly the expected JSON types (every event proxyd sends),
    else None so the serializer's field-by-field validation produces the error messages."""
    if not isinstance(data, dict):
        return None
    event_id, seq, at, kind, body = (data.get(k) for k in ("id", "seq", "at", "kind", "data"))
    if not (isinstance(event_id, str) and type(seq) is int and 0 <= seq <= MAX_SEQ and isinstance(at, str)
            and isinstance(kind, str) and 0 < len(kind) <= 32 and kind.strip() == kind
            and isinstance(body, dict)):
        return None
    try:
        parsed_id = uuid.UUID(event_id)
        parsed_at = parse_datetime(at)
    except ValueError:
        return None
    if parsed_at is None or parsed_at.tzinfo is None:
        return None
    return {"id": parsed_id, "seq": seq, "at": parsed_at, "kind": kind, "data": body}


class ReportEventSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    seq = serializers.IntegerField(min_value=0, max_value=MAX_SEQ)
    at = serializers.DateTimeField()
    # Unknown kinds are accepted and recorded (newer proxyd), but not applied.
    kind = serializers.CharField(max_length=32)
    data = serializers.DictField()

    def run_validation(self, data=serializers.empty):
        # Batches carry up to 1000 events: the generic field machinery is most of the HTTP cost.
        fast = _well_formed_event(data)
        return fast if fast is not None else super().run_validation(data)


class ReportBatchSerializer(serializers.Serializer):
    schema_version = serializers.IntegerField()
    node = NodeInfoSerializer(required=False)
    events = ReportEventSerializer(many=True, allow_empty=True)

    def validate_schema_version(self, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise serializers.ValidationError(f"Unsupported schema_version {value}; this server speaks {SCHEMA_VERSION}.")
        return value

    def validate_events(self, value: list) -> list:
        limit = settings.APPLIANCE_MAX_REPORT_EVENTS
        if len(value) > limit:
            raise serializers.ValidationError(f"At most {limit} events per batch.")
        return value


class ReportResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
