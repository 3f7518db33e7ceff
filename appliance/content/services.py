"""Writes for the cached-content catalogue: report appliers and operator actions."""
from __future__ import annotations

import datetime as dt
import importlib
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from appliance.control.coerce import as_datetime, as_int, as_optional_int, as_str
from appliance.core.audit import Actor, audit_record
from appliance.core.exceptions import ConflictError
from appliance.content.models import CachedContent, ContentState, PrestuffRequest, PurgeRequest, RequestState
from appliance.nodes.models import ProxyNode
from appliance.origins.selectors import origin_for_url
from proxyd.rtsp.uri import url_key, url_prefix_key

logger = logging.getLogger(__name__)


def content_apply_change(*, node: ProxyNode, data: dict, seq: int, at: dt.datetime) -> CachedContent | None:
    """Upsert the node's copy of one URL from a cache.changed event, ignoring out-of-date events.
    URLs are kept in normal form (proxyd.rtsp.uri.url_key), as current nodes report them."""
    url = url_key(as_str(data.get("url"), 2000))
    state = data.get("state")
    if not url or state not in ContentState.values:
        logger.warning("cache.changed from %s ignored: url=%r state=%r", node.name, url, state)
        return None
    content, created = CachedContent.objects.select_for_update().get_or_create(
        node=node, url=url, defaults={"origin": origin_for_url(url), "report_seq": -1})
    if seq <= content.report_seq:
        return content
    content.state = state
    content.report_seq = seq
    content.sdp = as_str(data.get("sdp"), 1 << 20)
    content.cache_control = as_str(data.get("cache_control"), 1000)
    content.last_modified = as_str(data.get("last_modified"), 100)
    content.etag = as_str(data.get("etag"), 255)
    content.content_size = as_optional_int(data.get("content_size"))
    content.size_bytes = max(0, as_int(data.get("size_bytes")))
    content.fetched_at = as_datetime(data.get("fetched_at")) or content.fetched_at
    content.expires_at = as_datetime(data.get("expires_at"))
    content.hits = max(0, as_int(data.get("hits")))
    content.bytes_served = max(0, as_int(data.get("bytes_served")))
    content.save()
    if state == ContentState.PURGED:
        _complete_purges_for(url, at, node)
    elif state == ContentState.COMPLETE:
        PrestuffRequest.objects.filter(url=url, state=RequestState.PENDING).filter(
            Q(node=node) | Q(node__isnull=True)).update(state=RequestState.DONE, completed_at=at)
    return content


def _complete_purges_for(url: str, at: dt.datetime, node: ProxyNode) -> None:
    """A purge is done once no enabled node it concerns still holds a matching copy: with several nodes
    the first node's `purged` is not enough (the others keep getting the purge in their snapshot).
    An operator's purge (no node) concerns every node, a quota purge only the node over quota."""
    pending = PurgeRequest.objects.filter(state=RequestState.PENDING).filter(
        Q(node=node) | Q(node__isnull=True))
    candidates = [p.pk for p in pending.only("pk", "url", "prefix")
                  if (url.startswith(url_prefix_key(p.url)) if p.prefix else url == url_key(p.url))]
    if not candidates:
        return
    # Locked before looking at the other nodes' rows: two nodes reporting `purged` at once would
    # otherwise each see the other's copy still held and neither would finish the purge.
    matching = list(pending.select_for_update().filter(pk__in=candidates).order_by("pk")
                    .only("pk", "url", "prefix", "node_id"))
    held = CachedContent.objects.filter(node__enabled=True).exclude(state=ContentState.PURGED)
    done = [p.pk for p in matching if not _still_held(held, p).exists()]
    if done:
        PurgeRequest.objects.filter(pk__in=done).update(state=RequestState.DONE, completed_at=at)


def _still_held(held, purge: PurgeRequest):
    """The copies `purge` still waits for (stored URLs are in normal form, the request's as entered)."""
    if purge.prefix:
        rows = held.filter(url__startswith=url_prefix_key(purge.url))
    else:
        rows = held.filter(url=url_key(purge.url))
    return rows.filter(node_id=purge.node_id) if purge.node_id is not None else rows


def purge_request_create(*, url: str, prefix: bool, actor: Actor) -> PurgeRequest:
    with transaction.atomic():
        purge = PurgeRequest.objects.create(url=url, prefix=prefix)
        matching = CachedContent.objects.filter(url__startswith=url_prefix_key(url)) if prefix \
            else CachedContent.objects.filter(url=url_key(url))
        marked = matching.exclude(state=ContentState.PURGED).update(state=ContentState.PURGING,
                                                                    updated_at=timezone.now())
        audit_record(actor=actor, action="content.purge", obj=purge,
                     changes={"url": url, "prefix": prefix, "entries_marked": marked})
    return purge


def content_purge(*, content: CachedContent, actor: Actor) -> PurgeRequest:
    if content.state == ContentState.PURGED:
        raise ConflictError("This content has already been purged.", code="already_purged")
    return purge_request_create(url=content.url, prefix=False, actor=actor)


def _revalidate_task():
    try:
        return importlib.import_module("appliance.content.tasks").revalidate_content
    except (ImportError, AttributeError):
        return None


def content_revalidate(*, content: CachedContent, actor: Actor) -> bool:
    """Queue a revalidation after commit. Returns False when no task runner is installed."""
    if content.state in (ContentState.PURGED, ContentState.PURGING):
        raise ConflictError("Purged content cannot be revalidated.", code="purged")
    task = _revalidate_task()
    with transaction.atomic():
        audit_record(actor=actor, action="content.revalidate", obj=content, changes={"url": content.url})
        if task is not None:
            content_id = content.pk
            transaction.on_commit(lambda: task.delay(content_id))
    return task is not None


def content_prestuff(*, url: str, node: ProxyNode | None, actor: Actor) -> PrestuffRequest:
    with transaction.atomic():
        request = PrestuffRequest.objects.create(url=url_key(url), node=node)  # as the node reports it
        audit_record(actor=actor, action="content.prestuff", obj=request,
                     changes={"url": url, "node": node.name if node else None})
    return request
