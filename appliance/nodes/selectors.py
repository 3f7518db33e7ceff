"""Node reads: a node's status is derived from last_seen (every report and snapshot poll sets it).

online: seen within APPLIANCE_NODE_STALE_SECONDS; stale: within APPLIANCE_NODE_OFFLINE_SECONDS; else
offline (its load counts as zero and the beat task nodes.close_lost ends its sessions and splits).
"""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import BooleanField, Case, CharField, Min, Q, QuerySet, Value, When

from appliance.nodes.models import ProxyNode


def node_by_token_hash(token_hash: str) -> ProxyNode | None:
    """The enabled node with this token hash (every request of a node: no ORM query compiled)."""
    return next(iter(ProxyNode.objects.raw(
        "SELECT * FROM nodes_proxynode WHERE token_hash = %s AND enabled", [token_hash])), None)


def offline_cutoff(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.APPLIANCE_NODE_OFFLINE_SECONDS)


def stale_cutoff(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.APPLIANCE_NODE_STALE_SECONDS)


def node_status(last_seen: dt.datetime | None, now: dt.datetime) -> str:
    """One node's status (the rule node_list annotates in SQL)."""
    if last_seen is None or last_seen < offline_cutoff(now):
        return "offline"
    return "online" if last_seen >= stale_cutoff(now) else "stale"


def node_list(*, now: dt.datetime) -> QuerySet[ProxyNode]:
    """Every node, each with `status` (online/stale/offline) and `online` (not offline)."""
    return ProxyNode.objects.annotate(
        status=Case(When(last_seen__gte=stale_cutoff(now), then=Value("online")),
                    When(last_seen__gte=offline_cutoff(now), then=Value("stale")),
                    default=Value("offline"), output_field=CharField()),
        online=Case(When(last_seen__gte=offline_cutoff(now), then=Value(True)),
                    default=Value(False), output_field=BooleanField()))


def nodes_offline(*, now: dt.datetime) -> QuerySet[ProxyNode]:
    """Nodes that stopped reporting (or never did)."""
    return ProxyNode.objects.filter(Q(last_seen__lt=offline_cutoff(now)) | Q(last_seen__isnull=True))


WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")


def peer_address(node: ProxyNode) -> str:
    """HOST:PORT the node's cluster peers reach it at: its rtsp_address, else the listen address it
    reports unless that is a wildcard; "" when unknown."""
    if node.rtsp_address:
        return node.rtsp_address
    host = node.listen.rpartition(":")[0]
    return "" if host in WILDCARD_HOSTS else node.listen


def cluster_members(*, now: dt.datetime) -> list[dict]:
    """Enabled nodes with a known address, in name order: {name, address, online} (online: the
    dashboard's `online` status, seen within APPLIANCE_NODE_STALE_SECONDS)."""
    members = []
    for node in node_list(now=now).filter(enabled=True).order_by("name"):
        address = peer_address(node)
        if address:
            members.append({"name": node.name, "address": address, "online": node.status == "online"})
    return members


def cluster_online_until(*, now: dt.datetime) -> dt.datetime | None:
    """When the enabled node seen longest ago among the online ones turns stale if it stays silent
    (the first moment cluster_members() can change by time alone); None when none is online."""
    oldest = (ProxyNode.objects.filter(enabled=True, last_seen__gte=stale_cutoff(now))
              .aggregate(oldest=Min("last_seen"))["oldest"])
    return oldest + dt.timedelta(seconds=settings.APPLIANCE_NODE_STALE_SECONDS) if oldest else None
