"""Housekeeping and pruning, run as the task functions themselves (no broker)."""

import datetime as dt

import pytest
from django.utils import timezone

from appliance.content.models import CachedContent, ContentState, PurgeRequest
from appliance.content.tasks import housekeeping
from appliance.nodes.models import ProxyNode
from appliance.origins.models import Origin
from appliance.uplink.models import UplinkEvent, UplinkState
from appliance.uplink.tasks import prune_sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return ProxyNode.objects.create(name="node-1", token_hash="2" * 64)


def test_content_long_past_expiry_goes_stale_but_stale_if_error_grace_is_respected(node):
    now = timezone.now()
    strict = Origin.objects.create(name="strict", base_url="rtsp://a/", route_prefix="/a")
    lenient = Origin.objects.create(name="lenient", base_url="rtsp://b/", route_prefix="/b", stale_if_error=3600)
    overdue = CachedContent.objects.create(node=node, origin=strict, url="rtsp://a/x", state=ContentState.COMPLETE,
                                           expires_at=now - dt.timedelta(minutes=1))
    in_grace = CachedContent.objects.create(node=node, origin=lenient, url="rtsp://b/x",
                                            state=ContentState.COMPLETE, expires_at=now - dt.timedelta(minutes=1))
    fresh = CachedContent.objects.create(node=node, origin=strict, url="rtsp://a/y", state=ContentState.COMPLETE,
                                         expires_at=now + dt.timedelta(hours=1))

    assert housekeeping()["expired"] == 1
    states = {row.pk: row.state for row in CachedContent.objects.all()}
    assert states == {overdue.pk: ContentState.STALE, in_grace.pk: ContentState.COMPLETE,
                      fresh.pk: ContentState.COMPLETE}


def test_quota_purges_the_oldest_entries_of_a_node_over_quota(node, settings):
    settings.APPLIANCE_CACHE_QUOTA_BYTES = 250
    now = timezone.now()
    for age, url in ((3, "rtsp://o/oldest"), (2, "rtsp://o/middle"), (1, "rtsp://o/newest")):
        CachedContent.objects.create(node=node, url=url, state=ContentState.COMPLETE, size_bytes=100,
                                     fetched_at=now - dt.timedelta(hours=age), expires_at=now + dt.timedelta(days=1))

    assert housekeeping()["over_quota"] == 1
    assert list(PurgeRequest.objects.values_list("url", flat=True)) == ["rtsp://o/oldest"]
    assert CachedContent.objects.get(url="rtsp://o/oldest").state == ContentState.PURGING
    assert housekeeping()["over_quota"] == 0  # purging entries no longer count; running twice is harmless


def test_prune_deletes_only_old_sent_events():
    now = timezone.now()
    old = UplinkEvent.objects.create(url="rtsp://o/x", event_type="remote-log", body="b", state=UplinkState.SENT,
                                     sent_at=now - dt.timedelta(days=30))
    recent = UplinkEvent.objects.create(url="rtsp://o/x", event_type="remote-log", body="b", state=UplinkState.SENT,
                                        sent_at=now - dt.timedelta(hours=1))
    failed = UplinkEvent.objects.create(url="rtsp://o/x", event_type="remote-log", body="b", state=UplinkState.FAILED)
    assert prune_sent() == 1
    assert set(UplinkEvent.objects.values_list("pk", flat=True)) == {recent.pk, failed.pk}
    assert not UplinkEvent.objects.filter(pk=old.pk).exists()


def test_a_quota_purge_concerns_only_the_node_over_quota(node, settings):
    from appliance.content.services import content_apply_change
    from appliance.control.snapshot import snapshot_content

    settings.APPLIANCE_CACHE_QUOTA_BYTES = 150
    other = ProxyNode.objects.create(name="node-2", token_hash="3" * 64)
    now = timezone.now()
    for owner, urls in ((node, ("rtsp://o/shared", "rtsp://o/mine")), (other, ("rtsp://o/shared",))):
        for age, url in enumerate(urls):
            CachedContent.objects.create(node=owner, url=url, state=ContentState.COMPLETE, size_bytes=100,
                                         fetched_at=now - dt.timedelta(hours=3 - age),
                                         expires_at=now + dt.timedelta(days=1))

    assert housekeeping()["over_quota"] == 1
    purge = PurgeRequest.objects.get()
    assert (purge.url, purge.node) == ("rtsp://o/shared", node)
    assert [p["url"] for p in snapshot_content(node=node, now=now)["purges"]] == ["rtsp://o/shared"]
    assert snapshot_content(node=other, now=now)["purges"] == []
    assert CachedContent.objects.get(node=other, url="rtsp://o/shared").state == ContentState.COMPLETE

    # The other node dropping its own copy does not complete this node's purge; this node's report does.
    content_apply_change(node=other, data={"url": "rtsp://o/shared", "state": "purged"}, seq=5, at=now)
    assert PurgeRequest.objects.get().state == "pending"
    content_apply_change(node=node, data={"url": "rtsp://o/shared", "state": "purged"}, seq=5, at=now)
    assert PurgeRequest.objects.get().state == "done"


def test_a_quota_purge_waits_only_for_its_node_an_operators_purge_for_every_node(node):
    from appliance.content.services import content_apply_change

    other = ProxyNode.objects.create(name="node-2", token_hash="3" * 64)
    now = timezone.now()
    for owner in (node, other):
        for url in ("rtsp://o/quota", "rtsp://o/operator"):
            CachedContent.objects.create(node=owner, url=url, state=ContentState.COMPLETE, size_bytes=100)
    quota = PurgeRequest.objects.create(url="rtsp://o/quota", prefix=False, node=node)
    operator = PurgeRequest.objects.create(url="rtsp://o/operator", prefix=False)

    for url in ("rtsp://o/quota", "rtsp://o/operator"):
        content_apply_change(node=node, data={"url": url, "state": "purged"}, seq=5, at=now)
    states = dict(PurgeRequest.objects.values_list("pk", "state"))
    assert states == {quota.pk: "done", operator.pk: "pending"}  # node-2 still holds the operator's URL
    assert CachedContent.objects.get(node=other, url="rtsp://o/quota").state == ContentState.COMPLETE

    content_apply_change(node=other, data={"url": "rtsp://o/operator", "state": "purged"}, seq=5, at=now)
    assert PurgeRequest.objects.get(pk=operator.pk).state == "done"
