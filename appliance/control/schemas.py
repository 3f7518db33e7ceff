"""Versioned (v1) request schema for report batches; see docs/architecture.md."""
from __future__ import annotations

import re
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
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _well_formed_event(data) -> dict | None:
    """The validated event when it has exactly the expected JSON types (every event proxyd sends),
    else None so the serializer's field-by-field validation produces the error messages."""
    if not isinstance(data, dict):
        return None
    get = data.get  # no generator: this runs for every event of every batch
    event_id, seq, at, kind, body = get("id"), get("seq"), get("at"), get("kind"), get("data")
    if not (isinstance(event_id, str) and type(seq) is int and 0 <= seq <= MAX_SEQ and isinstance(at, str)
            and isinstance(kind, str) and 0 < len(kind) <= 32 and kind.strip() == kind
            and isinstance(body, dict)):
        return None
    try:
        if CANONICAL_UUID.fullmatch(event_id) is None:  # proxyd sends str(uuid4()): no parse, no str()
            event_id = str(uuid.UUID(event_id))
        parsed_at = parse_datetime(at)
    except ValueError:
        return None
    if parsed_at is None or parsed_at.tzinfo is None:
        return None
    return {"id": event_id, "seq": seq, "at": parsed_at, "kind": kind, "data": body}


class ReportEventSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    seq = serializers.IntegerField(min_value=0, max_value=MAX_SEQ)
    at = serializers.DateTimeField()
    # Unknown kinds are accepted and recorded (newer proxyd), but not applied.
    kind = serializers.CharField(max_length=32)
    data = serializers.DictField()

    def validate_id(self, value: uuid.UUID) -> str:
        return str(value)  # the canonical text, as the fast path gives it

    def run_validation(self, data=serializers.empty):
        # Batches carry up to 1000 events: the generic field machinery is most of the HTTP cost.
        fast = _well_formed_event(data)
        return fast if fast is not None else super().run_validation(data)


_NODE_TEXT_LIMITS = {"name": 100, "version": 64, "listen": 255}
_LOAD_DEFAULTS = {"sessions": 0, "bandwidth_bps": 0, "cache_disk_full": False}


def _well_formed_node(data) -> dict | None:
    """NodeInfoSerializer's result for a node section with exactly the expected JSON types, else None."""
    if not isinstance(data, dict) or not data.keys() <= {*_NODE_TEXT_LIMITS, "load", "reporter"}:
        return None
    node = {"version": "", "listen": ""}
    for key, limit in _NODE_TEXT_LIMITS.items():
        if key in data:
            value = data[key]
            if not isinstance(value, str) or len(value) > limit or value.strip() != value:
                return None
            node[key] = value
    if "load" in data:
        load = data["load"]
        if not isinstance(load, dict) or not load.keys() <= _LOAD_DEFAULTS.keys():
            return None
        node["load"] = {**_LOAD_DEFAULTS, **load}
        if not (all(type(node["load"][k]) is int and node["load"][k] >= 0 for k in ("sessions", "bandwidth_bps"))
                and type(node["load"]["cache_disk_full"]) is bool):
            return None
    if "reporter" in data:
        reporter = data["reporter"]
        if not isinstance(reporter, dict):
            return None
        node["reporter"] = reporter
    return node


def well_formed_batch(data) -> dict | None:
    """The validated batch when the batch, its node section and every event have exactly the expected
    JSON types (every batch proxyd sends), else None: the serializer's fields then produce the errors.
    Validating a batch of 1,000 events field by field was most of the request's validation cost."""
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION \
            or type(data.get("schema_version")) is not int or not data.keys() <= {"schema_version", "node", "events"}:
        return None
    events = data.get("events")
    if not isinstance(events, list) or len(events) > settings.APPLIANCE_MAX_REPORT_EVENTS:
        return None
    batch = {"schema_version": SCHEMA_VERSION, "events": []}
    if "node" in data:
        node = _well_formed_node(data["node"])
        if node is None:
            return None
        batch["node"] = node
    for event in events:
        validated = _well_formed_event(event)
        if validated is None:
            return None
        batch["events"].append(validated)
    return batch


class ReportBatchSerializer(serializers.Serializer):
    schema_version = serializers.IntegerField()
    node = NodeInfoSerializer(required=False)
    events = ReportEventSerializer(many=True, allow_empty=True)

    def run_validation(self, data=serializers.empty):
        fast = well_formed_batch(data)
        return fast if fast is not None else super().run_validation(data)

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
