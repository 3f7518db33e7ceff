from django.db import models

from appliance.core.models import TimeStampedModel


class ContentState(models.TextChoices):
    FILLING = "filling", "Filling"
    COMPLETE = "complete", "Complete"
    INCOMPLETE = "incomplete", "Incomplete"
    STALE = "stale", "Stale"
    PURGING = "purging", "Purging"
    PURGED = "purged", "Purged"


class CachedContent(models.Model):
    """One cached item on one proxyd node, as last reported by that node."""

    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="content")
    origin = models.ForeignKey("origins.Origin", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="content")
    url = models.CharField(max_length=2000, help_text="origin URL")
    sdp = models.TextField(blank=True)
    cache_control = models.CharField(max_length=1000, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    etag = models.CharField(max_length=255, blank=True)
    content_size = models.BigIntegerField(null=True, blank=True, help_text="x-wms-content-size")
    state = models.CharField(max_length=16, choices=ContentState.choices, default=ContentState.FILLING)
    size_bytes = models.BigIntegerField(default=0)
    fetched_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_revalidated_at = models.DateTimeField(null=True, blank=True)
    hits = models.BigIntegerField(default=0)
    bytes_served = models.BigIntegerField(default=0)
    report_seq = models.BigIntegerField(default=-1, help_text="seq of the newest applied cache.changed")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url", "node_id"]
        constraints = [models.UniqueConstraint(fields=["node", "url"], name="content_unique_node_url")]
        indexes = [
            models.Index(fields=["state", "expires_at"]),
            models.Index(fields=["expires_at"]),
            models.Index(fields=["last_revalidated_at"]),
        ]

    def __str__(self) -> str:
        return self.url


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class PurgeRequest(TimeStampedModel):
    """A purge: an operator's (every node) or a node's quota purge (that node only); carried in the
    snapshots of the nodes it concerns until one of them reports the URL purged."""

    url = models.CharField(max_length=2000)
    prefix = models.BooleanField(default=False)
    node = models.ForeignKey("nodes.ProxyNode", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="purge_requests", help_text="empty: every node")
    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.PENDING)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "id"])]


class PrestuffRequest(TimeStampedModel):
    """Fill the cache ahead of demand; carried in the snapshot until the content is complete."""

    url = models.CharField(max_length=2000)
    node = models.ForeignKey("nodes.ProxyNode", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="prestuff_requests", help_text="empty: every node")
    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.PENDING)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "id"])]
