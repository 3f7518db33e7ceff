"""Versioned (v1) request schema for report batches; see docs/architecture.md."""
from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

SCHEMA_VERSION = 1
EVENT_KINDS = ("session.started", "session.counters", "session.ended", "cache.changed", "playlog", "sendevent")


class LoadSerializer(serializers.Serializer):
    sessions = serializers.IntegerField(min_value=0, required=False, default=0)
    bandwidth_bps = serializers.IntegerField(min_value=0, required=False, default=0)


class NodeInfoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    version = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    listen = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    load = LoadSerializer(required=False)


class ReportEventSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    seq = serializers.IntegerField(min_value=0, max_value=2**63 - 1)
    at = serializers.DateTimeField()
    # Unknown kinds are accepted and recorded (newer proxyd), but not applied.
    kind = serializers.CharField(max_length=32)
    data = serializers.DictField()


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
