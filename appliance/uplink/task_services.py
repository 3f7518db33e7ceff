"""Uplink outbox delivery: SendEvent ([MS-RTSP] 2.2.7.11) of UplinkEvent rows to their origins.

claim (short transaction, SKIP LOCKED; rows become `sending` with a lease in next_attempt_at and
attempts+1) -> send (no DB) -> record (conditional update on state=sending and the claimed attempt
number, so a row is marked sent at most once and a late worker cannot overwrite a newer claim).
A worker that dies mid-batch leaves rows `sending`; once their lease runs out they are claimed again,
except the one it was sending: its attempt_started_at is set (one UPDATE before each send), it may have
reached the origin, and SendEvent carries no key an origin could deduplicate on, so it becomes
`failed` ("may have been sent") for an operator to retry rather than risk a duplicate.
The send authenticates with the event's Origin username/password when the origin answers 401; they
are read at claim time (never task arguments) and kept out of reprs, logs and last_error.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from appliance.content.task_services import proxy_user_agent
from appliance.origins.credentials import CredentialsKeyError, decrypt_password
from appliance.origins.models import Origin
from appliance.origins.selectors import origin_for_url
from appliance.uplink.models import UplinkEvent, UplinkState
from proxyd.rtsp.oneshot import RtspRequestError, rtsp_request

logger = logging.getLogger(__name__)

SENDEVENT_CONTENT_TYPE = "application/x-wms-sendevent"
MAYBE_SENT = "the worker sending it died: it may have reached the origin, so it was not resent (retry it if not)"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Claimed:
    event_id: int
    attempt: int  # attempts value written by the claim; the record step matches on it
    url: str
    body: str
    username: str = ""  # the origin's credentials (never in reprs or logs)
    password: str = field(default="", repr=False)
    credentials_error: str = ""  # the origin's password could not be decrypted: not sent, retried later


@dataclass(frozen=True)
class Outcome:
    ok: bool
    permanent: bool = False  # the origin refused the event itself (4xx): retrying cannot help
    error: str = ""


def backoff_seconds(attempt: int, *, base: int, cap: int, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: a random delay in [d/2, d], d = min(cap, base * 2^(attempt-1))."""
    ceiling = min(float(cap), base * 2.0 ** max(0, attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def uplink_claim_batch(*, now: dt.datetime, limit: int) -> list[Claimed]:
    lease_until = now + dt.timedelta(seconds=settings.APPLIANCE_UPLINK_LEASE)
    due = Q(state=UplinkState.PENDING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    lease_expired = Q(state=UplinkState.SENDING, next_attempt_at__lte=now)
    with transaction.atomic():
        rows = UplinkEvent.objects.filter(due | lease_expired).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        claimed = []
        for row in rows.only("pk", "attempts", "url", "body", "origin_id", "state", "attempt_started_at")[:limit]:
            if row.state == UplinkState.SENDING and row.attempt_started_at is not None:
                UplinkEvent.objects.filter(pk=row.pk).update(
                    state=UplinkState.FAILED, next_attempt_at=None, last_error=MAYBE_SENT)
                logger.warning("uplink event %s: its worker died while sending it; not resent (%s)",
                               row.pk, MAYBE_SENT)
                continue
            attempt = row.attempts + 1
            UplinkEvent.objects.filter(pk=row.pk).update(
                state=UplinkState.SENDING, attempts=attempt, next_attempt_at=lease_until, attempt_started_at=None)
            claimed.append((row, attempt))
    credentials = _credentials([row for row, _ in claimed])
    return [Claimed(row.pk, attempt, row.url, row.body, *creds)
            for (row, attempt), creds in zip(claimed, credentials, strict=True)]


def _credentials(rows: list[UplinkEvent]) -> list[tuple[str, str, str]]:
    """(username, password, error) per event: its Origin's, or the origin whose base URL covers its URL."""
    ids = {row.origin_id for row in rows if row.origin_id is not None}
    by_id = ({o.pk: o for o in Origin.objects.filter(pk__in=ids).only("username", "password_encrypted")}
             if ids else {})
    origins = None
    out = []
    for row in rows:
        origin = by_id.get(row.origin_id)
        if origin is None and row.origin_id is None:
            if origins is None:
                origins = list(Origin.objects.only("id", "base_url", "username", "password_encrypted"))
            origin = origin_for_url(row.url, origins=origins)
        if origin is None:
            out.append(("", "", ""))
            continue
        try:
            out.append((origin.username, decrypt_password(origin.password_encrypted), ""))
        except CredentialsKeyError as exc:
            out.append(("", "", str(exc)))
    return out


def send_event(claimed: Claimed, *, timeout: float) -> Outcome:
    if claimed.credentials_error:
        return Outcome(False, error=claimed.credentials_error)  # sent without them it would be refused for good
    headers = [("User-Agent", proxy_user_agent()), ("Content-Type", SENDEVENT_CONTENT_TYPE)]
    try:
        response = rtsp_request(claimed.url, "SET_PARAMETER", headers=headers,
                                body=claimed.body.encode("utf-8"), timeout=timeout,
                                username=claimed.username, password=claimed.password)
    except RtspRequestError as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}")
    if 200 <= response.status < 300:
        return Outcome(True)
    error = f"origin answered {response.status} {response.reason}"
    return Outcome(False, permanent=400 <= response.status < 500, error=error)


def uplink_record_outcome(*, claimed: Claimed, outcome: Outcome, now: dt.datetime) -> bool:
    """Store the result of one send; False when the claim was lost (lease expired and re-claimed)."""
    mine = UplinkEvent.objects.filter(pk=claimed.event_id, state=UplinkState.SENDING, attempts=claimed.attempt)
    if outcome.ok:
        return mine.update(state=UplinkState.SENT, sent_at=now, next_attempt_at=None, last_error="") == 1
    error = outcome.error[:MAX_ERROR_CHARS]
    if outcome.permanent or claimed.attempt >= settings.APPLIANCE_UPLINK_MAX_ATTEMPTS:
        return mine.update(state=UplinkState.FAILED, next_attempt_at=None, last_error=error) == 1
    delay = backoff_seconds(claimed.attempt, base=settings.APPLIANCE_UPLINK_BACKOFF_BASE,
                            cap=settings.APPLIANCE_UPLINK_BACKOFF_CAP)
    return mine.update(state=UplinkState.PENDING, next_attempt_at=now + dt.timedelta(seconds=delay),
                       last_error=error) == 1


def uplink_mark_started(claimed: Claimed) -> bool:
    """Record that this attempt is about to be sent; False when the claim was lost."""
    return UplinkEvent.objects.filter(pk=claimed.event_id, state=UplinkState.SENDING,
                                      attempts=claimed.attempt).update(attempt_started_at=timezone.now()) == 1


def uplink_release(claimed: Claimed) -> None:
    """Give back a claim that was not attempted (time budget spent); it is due again at once."""
    UplinkEvent.objects.filter(pk=claimed.event_id, state=UplinkState.SENDING, attempts=claimed.attempt).update(
        state=UplinkState.PENDING, attempts=claimed.attempt - 1, next_attempt_at=timezone.now())


def uplink_send_batch(*, limit: int) -> int:
    """Claim and deliver up to `limit` events; returns how many were attempted.

    Sending stops after half the lease so no claim can expire (and be taken by another worker) while
    this one is still about to send it; the rest is released.
    """
    start = time.monotonic()
    budget = settings.APPLIANCE_UPLINK_LEASE / 2
    claimed = uplink_claim_batch(now=timezone.now(), limit=limit)
    timeout = float(settings.APPLIANCE_ORIGIN_TIMEOUT)
    for index, item in enumerate(claimed):
        if time.monotonic() - start + timeout > budget:
            for rest in claimed[index:]:
                uplink_release(rest)
            return index
        if not uplink_mark_started(item):
            logger.warning("uplink event %s: claim lost before it was sent", item.event_id)
            continue
        outcome = send_event(item, timeout=timeout)
        if not uplink_record_outcome(claimed=item, outcome=outcome, now=timezone.now()):
            logger.warning("uplink event %s: claim lost before its result was stored", item.event_id)
        elif not outcome.ok:
            logger.info("uplink event %s attempt %s failed: %s", item.event_id, item.attempt, outcome.error)
    return len(claimed)


def uplink_prune_sent(*, older_than: dt.datetime, limit: int) -> int:
    ids = list(UplinkEvent.objects.filter(state=UplinkState.SENT, sent_at__lt=older_than)
               .order_by("pk").values_list("pk", flat=True)[:limit])
    return UplinkEvent.objects.filter(pk__in=ids).delete()[0] if ids else 0
