"""Outbox writes. Sending (claim with SKIP LOCKED, deliver, retry) belongs to the uplink tasks."""
from __future__ import annotations

import datetime as dt

from django.db import transaction

from appliance.control.coerce import as_str
from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ConflictError
from appliance.nodes.models import ProxyNode
from appliance.origins.selectors import origin_for_url
from appliance.playback.models import StreamSession
from appliance.uplink.models import UplinkEvent, UplinkEventType, UplinkState


def uplink_enqueue_from_report(*, node: ProxyNode, event_id: str, data: dict, at: dt.datetime,
                               session: StreamSession | None) -> UplinkEvent | None:
    """Outbox row for a subscribed SendEvent; called inside the ingestion transaction."""
    event_type = data.get("event_type")
    origin_url = as_str(data.get("origin_url"), 2000)
    if not data.get("subscribed") or event_type not in UplinkEventType.values or not origin_url:
        return None
    return UplinkEvent.objects.create(
        origin=origin_for_url(origin_url), node=node, session=session, source_event_id=event_id,
        url=origin_url, player_url=as_str(data.get("url"), 2000), event_type=event_type,
        body=as_str(data.get("body"), 1 << 20), next_attempt_at=at,
    )


def uplink_retry(*, event: UplinkEvent, actor: Actor, now: dt.datetime) -> UplinkEvent:
    """Put a failed event back in the queue (operator action)."""
    with transaction.atomic():
        event = UplinkEvent.objects.select_for_update().get(pk=event.pk)
        if event.state != UplinkState.FAILED:
            raise ConflictError("Only failed events can be retried.", code="not_failed")
        event.state = UplinkState.PENDING
        event.next_attempt_at = now
        event.save(update_fields=["state", "next_attempt_at"])
        audit_record(actor=actor, action="uplink.retry", obj=event, changes={"attempts": event.attempts})
    return event
