"""The configuration snapshot a node pulls; its ETag is a hash of its content."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from django.conf import settings
from django.db.models import Q

from appliance.content.models import CachedContent, PrestuffRequest, PurgeRequest, RequestState
from appliance.control.schemas import SCHEMA_VERSION
from appliance.nodes.models import ProxyNode
from appliance.nodes.selectors import cluster_members, cluster_online_until
from appliance.origins.credentials import decrypt_password
from appliance.origins.selectors import origins_for_node, snapshot_player_access
from appliance.playback.models import StreamSession

_ORIGIN_FIELDS = ("id", "name", "route_prefix", "base_url", "allowed", "cache_policy", "cache_ttl",
                  "stale_if_error", "transport", "live", "split", "tls_verify", "username")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def snapshot_content(*, node: ProxyNode, now: dt.datetime) -> dict:
    """Everything except etag and generated_at, in a stable order."""
    return _content(node, now)[0]


def _content(node: ProxyNode, now: dt.datetime) -> tuple[dict, dt.datetime | None]:
    """The content and the first moment it can change by time alone (None: only a write changes it)."""
    # Passwords are decrypted here, for this node's origins only, and travel only in the response.
    origins = [{**dict(zip(_ORIGIN_FIELDS, row[:-1], strict=True)), "password": decrypt_password(row[-1])}
               for row in origins_for_node(node).order_by("id").values_list(*_ORIGIN_FIELDS,
                                                                             "password_encrypted")]
    # Player hashes likewise only for this node's origins, and only where players must authenticate.
    access = snapshot_player_access([o["id"] for o in origins])
    origins = [{**o, **access[o["id"]]} for o in origins]
    purges = [{"id": pk, "url": url, "prefix": prefix} for pk, url, prefix in
              PurgeRequest.objects.filter(state=RequestState.PENDING)
              .filter(Q(node=node) | Q(node__isnull=True)).order_by("id")
              .values_list("id", "url", "prefix")[: settings.APPLIANCE_SNAPSHOT_MAX_PURGES]]
    prestuff = [{"id": pk, "url": url} for pk, url in
                PrestuffRequest.objects.filter(state=RequestState.PENDING)
                .filter(Q(node=node) | Q(node__isnull=True)).order_by("id").values_list("id", "url")
                [: settings.APPLIANCE_SNAPSHOT_MAX_PURGES]]
    window = dt.timedelta(seconds=settings.APPLIANCE_SNAPSHOT_REVALIDATED_WINDOW)
    recent = list(CachedContent.objects.filter(node=node, last_revalidated_at__gte=now - window)
                  .order_by("url").values_list("url", "expires_at", "state", "last_revalidated_at"))
    revalidated = [{"url": url, "expires_at": _iso(expires), "state": state} for url, expires, state, _ in recent]
    expiries = [min(at for *_, at in recent) + window] if recent else []  # the oldest leaves the window
    terminate = list(StreamSession.objects.filter(node=node, ended_at__isnull=True,
                                                  terminate_requested_at__isnull=False)
                     .order_by("session_id").values_list("session_id", flat=True))
    cluster, cluster_expiry = _cluster(now)
    expiries += [cluster_expiry] if cluster_expiry else []
    return {"schema_version": SCHEMA_VERSION, "node": {"name": node.name}, "origins": origins,
            "purges": purges, "prestuff": prestuff, "revalidated": revalidated,
            "terminate_sessions": terminate, "reporting": _only_set(batch_delay=settings.APPLIANCE_REPORT_BATCH_DELAY),
            "polling": _only_set(interval=settings.APPLIANCE_SNAPSHOT_POLL_INTERVAL),
            "cluster": cluster}, min(expiries, default=None)


def _cluster(now: dt.datetime) -> tuple[dict, dt.datetime | None]:
    """The cache cluster as every node sees it (the same list, so they agree on URL owners), and when
    its first online member would turn stale if it went silent."""
    if not settings.APPLIANCE_CLUSTER_CACHE:
        return {"enabled": False}, None
    section = {"enabled": True, "id": settings.APPLIANCE_CLUSTER_ID, "nodes": cluster_members(now=now)}
    return section, cluster_online_until(now=now)


def _only_set(**values: int) -> dict:
    return {key: value for key, value in values.items() if value}  # absent: the node keeps its own


def snapshot_etag(content: dict) -> str:
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def snapshot_build(*, node: ProxyNode, now: dt.datetime) -> dict:
    return snapshot_build_expiring(node=node, now=now)[0]


def snapshot_build_expiring(*, node: ProxyNode, now: dt.datetime) -> tuple[dict, dt.datetime | None]:
    """The snapshot, and the first moment it can change by time alone (None: only by a write)."""
    content, expiry = _content(node, now)
    return {"schema_version": SCHEMA_VERSION, "etag": snapshot_etag(content), "generated_at": _iso(now),
            **{key: value for key, value in content.items() if key != "schema_version"}}, expiry
