"""Revalidation and housekeeping for cached content (used by appliance.content.tasks).

Revalidation is three steps so that no network call happens inside a DB transaction:
claim (short transaction, SKIP LOCKED) -> probe the origin (no DB) -> apply (short transaction,
compare-and-swap on the row's report_seq so a newer report from proxyd wins over our verdict).

`last_revalidated_at` is stamped when a row is claimed: it records the latest revalidation attempt,
which also keeps a failing origin from being asked again before APPLIANCE_REVALIDATE_RETRY_AFTER.

The probe authenticates with the row's Origin username/password when the origin answers 401
(proxyd.rtsp.oneshot); they are read with the row (task arguments stay ids) and never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState
from appliance.origins.credentials import CredentialsKeyError, decrypt_password
from proxyd.rtsp.oneshot import RtspRequestError, rtsp_request
from proxyd.wm.cache_control import decide_cacheability, parse_cache_control
from proxyd.wm.validators import Validators, comparable, content_changed, validators_from_headers

logger = logging.getLogger(__name__)

REVALIDATED_STATES = (ContentState.COMPLETE, ContentState.INCOMPLETE)
GCI_CONTENT_TYPE = "application/x-wms-getcontentinfo"
# An origin that does not implement GetContentInfo answers with one of these; DESCRIBE is asked instead.
GCI_UNSUPPORTED = frozenset({400, 405, 451, 501, 551})
# The origin no longer serves this content to us: the cached copy must not be served.
GONE = frozenset({301, 302, 305, 401, 403, 404, 407, 410})


@dataclass(frozen=True)
class Entry:
    """What revalidation needs from a CachedContent row and its origin, read before any network call."""

    content_id: int
    url: str
    sdp: str
    cache_control: str
    validators: Validators
    report_seq: int
    policy: str  # origin cache policy: obey / force_ttl / never
    forced_ttl: int
    live: bool
    username: str = ""  # the origin's credentials, answered to a 401 (never in reprs or logs)
    password: str = field(default="", repr=False)

    @property
    def windows_media(self) -> bool:
        # WMS origins mark their responses with x-wms-* directives and ASF headers in the SDP.
        return "x-wms-" in self.cache_control.lower() or "vnd.ms.wms-hdr" in self.sdp


@dataclass(frozen=True)
class Probe:
    method: str  # GET_PARAMETER (GetContentInfo) or DESCRIBE
    status: int | None  # None: no answer (refused, timeout, not RTSP)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "fresh", "stale" or "retry"
    reason: str
    expires_at: dt.datetime | None = None
    cache_control: str | None = None
    validators: Validators = Validators()
    sdp: str | None = None


def proxy_user_agent() -> str:
    guid = settings.APPLIANCE_PROXY_GUID or str(uuid.uuid5(uuid.NAMESPACE_URL, "appliance:" + settings.SECRET_KEY))
    return f"WMCacheProxy/{settings.APPLIANCE_PROXY_VERSION} guid/{guid.upper()}"


def content_claim_due_for_revalidation(*, now: dt.datetime, limit: int) -> list[int]:
    """Claim up to `limit` rows expiring within APPLIANCE_REVALIDATE_AHEAD; rows locked elsewhere are skipped."""
    due_before = now + dt.timedelta(seconds=settings.APPLIANCE_REVALIDATE_AHEAD)
    retry_before = now - dt.timedelta(seconds=settings.APPLIANCE_REVALIDATE_RETRY_AFTER)
    with transaction.atomic():
        due = (
            CachedContent.objects.filter(state__in=REVALIDATED_STATES, expires_at__lte=due_before)
            .filter(Q(last_revalidated_at__isnull=True) | Q(last_revalidated_at__lte=retry_before))
            .order_by("expires_at", "pk")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            CachedContent.objects.filter(pk__in=ids).update(last_revalidated_at=now)
    return ids


def load_entry(content_id: int) -> Entry | None:
    row = CachedContent.objects.select_related("origin").filter(pk=content_id).first()
    if row is None or row.state not in REVALIDATED_STATES:
        return None
    origin = row.origin
    try:
        password = decrypt_password(origin.password_encrypted) if origin else ""
    except CredentialsKeyError as exc:
        logger.error("content %s not revalidated: origin %s: %s", row.pk, origin.name, exc)
        return None  # asked again after APPLIANCE_REVALIDATE_RETRY_AFTER, as the claim recorded
    return Entry(
        content_id=row.pk,
        url=row.url,
        sdp=row.sdp,
        cache_control=row.cache_control,
        validators=Validators(last_modified=row.last_modified or None, etag=row.etag or None,
                              content_size=row.content_size),
        report_seq=row.report_seq,
        policy=origin.cache_policy if origin else "obey",
        forced_ttl=origin.cache_ttl if origin else 0,
        live=origin.live if origin else False,
        username=origin.username if origin else "",
        password=password,
    )


def _ask(url: str, method: str, headers: list[tuple[str, str]], body: bytes, timeout: float, *,
         username: str = "", password: str = "") -> Probe:
    try:
        response = rtsp_request(url, method, headers=headers, body=body, timeout=timeout, username=username,
                                password=password)
    except RtspRequestError as exc:
        return Probe(method=method, status=None, error=str(exc) or type(exc).__name__)
    return Probe(method=method, status=response.status, headers=tuple(response.headers.items()),
                 body=response.body)


def probe_origin(entry: Entry, *, timeout: float) -> Probe:
    """GetContentInfo for Windows Media origins (DESCRIBE if they do not support it), else DESCRIBE."""
    identity = [("User-Agent", proxy_user_agent())]
    credentials = {"username": entry.username, "password": entry.password}
    if entry.windows_media:
        gci = [*identity, ("Content-Type", GCI_CONTENT_TYPE)]
        probe = _ask(entry.url, "GET_PARAMETER", gci, b"\x00", timeout, **credentials)
        if probe.status not in GCI_UNSUPPORTED:
            return probe
    describe = [*identity, ("Accept", "application/sdp")]
    return _ask(entry.url, "DESCRIBE", describe, b"", timeout, **credentials)


def _header(probe: Probe, name: str) -> str | None:
    values = [value for key, value in probe.headers if key.lower() == name]
    return ", ".join(values) if values else None


def decide_revalidation(entry: Entry, probe: Probe, *, now: dt.datetime) -> Verdict:
    """Pure decision (MS-RTSP Figure 20, "expiration time extended?"); see proxyd.wm.validators."""
    if probe.status is None:
        return Verdict("retry", f"origin unreachable: {probe.error}")
    if probe.status in GONE:
        return Verdict("stale", f"origin answered {probe.status}")
    if not 200 <= probe.status < 300:
        return Verdict("retry", f"origin answered {probe.status}")
    raw_cc = _header(probe, "cache-control")
    cc = parse_cache_control(raw_cc) if raw_cc else None
    decision = decide_cacheability(cc, policy=entry.policy, forced_ttl=entry.forced_ttl,
                                   auth_challenged=False, live=entry.live)
    if not decision.cacheable:
        return Verdict("stale", f"not cacheable: {decision.reason}")
    new_validators = validators_from_headers(probe.headers)
    new_sdp = probe.body.decode("utf-8", "replace") if probe.method == "DESCRIBE" and probe.body else None
    stored_sdp = entry.sdp or None
    if content_changed(entry.validators, new_validators, stored_sdp, new_sdp):
        return Verdict("stale", "content changed at the origin")
    ttl = decision.ttl_seconds or 0
    if ttl <= 0:
        # Nothing extends the lifetime; with validators that matched it is still only good right now.
        return Verdict("stale", "no freshness lifetime")
    if not comparable(entry.validators, new_validators, stored_sdp, new_sdp) and probe.method == "DESCRIBE":
        return Verdict("stale", "nothing to compare")
    return Verdict("fresh", decision.reason, expires_at=now + dt.timedelta(seconds=ttl),
                   cache_control=raw_cc, validators=new_validators, sdp=new_sdp)


def content_apply_revalidation(*, entry: Entry, verdict: Verdict, now: dt.datetime) -> bool:
    """Write the verdict unless proxyd reported a newer version of the row meanwhile. True if written."""
    if verdict.outcome == "retry":
        return False
    with transaction.atomic():
        row = CachedContent.objects.select_for_update().filter(pk=entry.content_id).first()
        if row is None or row.state not in REVALIDATED_STATES or row.report_seq != entry.report_seq:
            return False
        row.last_revalidated_at = now
        fields = ["last_revalidated_at", "updated_at"]
        if verdict.outcome == "stale":
            row.state = ContentState.STALE
            fields.append("state")
        else:
            row.expires_at = verdict.expires_at
            fields.append("expires_at")
            if verdict.cache_control is not None:
                row.cache_control = verdict.cache_control[:1000]
                fields.append("cache_control")
            new = verdict.validators
            for attr, value in (("etag", new.etag), ("last_modified", new.last_modified),
                                ("content_size", new.content_size)):
                if value is not None:
                    setattr(row, attr, value)
                    fields.append(attr)
        row.save(update_fields=fields)
    return True


def content_revalidate(*, content_id: int) -> Verdict | None:
    """Revalidate one row with its origin. Safe to run twice: a second run only re-asks the origin."""
    entry = load_entry(content_id)
    if entry is None:
        return None
    probe = probe_origin(entry, timeout=float(settings.APPLIANCE_ORIGIN_TIMEOUT))
    now = timezone.now()
    verdict = decide_revalidation(entry, probe, now=now)
    written = content_apply_revalidation(entry=entry, verdict=verdict, now=now)
    logger.info("revalidated content %s (%s): %s, %s%s", content_id, entry.url, verdict.outcome, verdict.reason,
                "" if written or verdict.outcome == "retry" else " (not applied: row changed meanwhile)")
    return verdict


def content_expire_overdue(*, now: dt.datetime, limit: int) -> int:
    """Mark stale what expired longer ago than its origin's stale_if_error (revalidation kept failing)."""
    marked = 0
    with transaction.atomic():
        overdue = CachedContent.objects.filter(state__in=REVALIDATED_STATES, expires_at__lt=now).select_related(
            "origin").order_by("expires_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            overdue = overdue.select_for_update(skip_locked=True, of=("self",))
        for row in overdue[:limit]:
            grace = dt.timedelta(seconds=row.origin.stale_if_error if row.origin else 0)
            if row.expires_at + grace < now:
                row.state = ContentState.STALE
                row.save(update_fields=["state", "updated_at"])
                marked += 1
    return marked


def content_enforce_quota(*, quota_bytes: int, limit: int) -> int:
    """Per node, purge the oldest-fetched entries beyond `quota_bytes` (0: no quota). Returns rows marked."""
    if quota_bytes <= 0:
        return 0
    from django.db.models import Sum

    from appliance.content.models import PurgeRequest, RequestState
    from appliance.core.audit import SYSTEM, audit_record

    kept_states = (ContentState.FILLING, *REVALIDATED_STATES, ContentState.STALE)
    marked = 0
    with transaction.atomic():
        totals = (CachedContent.objects.filter(state__in=kept_states).values("node_id")
                  .annotate(total=Sum("size_bytes")).filter(total__gt=quota_bytes))
        for total in totals:
            excess = total["total"] - quota_bytes
            victims = (CachedContent.objects.filter(node_id=total["node_id"], state__in=kept_states)
                       .exclude(state=ContentState.FILLING).order_by("fetched_at", "pk"))
            for row in victims[:limit]:
                if excess <= 0 or marked >= limit:
                    break
                excess -= row.size_bytes
                row.state = ContentState.PURGING
                row.save(update_fields=["state", "updated_at"])
                pending = PurgeRequest.objects.filter(url=row.url, prefix=False, state=RequestState.PENDING)
                if not pending.filter(Q(node_id=row.node_id) | Q(node__isnull=True)).exists():
                    purge = PurgeRequest.objects.create(url=row.url, prefix=False, node_id=row.node_id)
                    audit_record(actor=SYSTEM, action="content.quota_purge", obj=purge,
                                 changes={"url": row.url, "node_id": row.node_id, "size_bytes": row.size_bytes})
                marked += 1
    return marked
