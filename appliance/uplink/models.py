from django.db import models


class UplinkState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class UplinkEventType(models.TextChoices):
    REMOTE_LOG = "remote-log", "remote-log"
    REMOTE_OPEN = "remote-open", "remote-open"
    REMOTE_CLOSE = "remote-close", "remote-close"


class UplinkEvent(models.Model):
    """Outbox row: one SendEvent to deliver to an origin; written in the same transaction as its report."""

    origin = models.ForeignKey("origins.Origin", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="uplink_events")
    node = models.ForeignKey("nodes.ProxyNode", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="uplink_events")
    session = models.ForeignKey("playback.StreamSession", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="uplink_events")
    source_event_id = models.UUIDField(unique=True, null=True, blank=True,
                                       help_text="id of the proxyd report event that created it")
    url = models.CharField(max_length=2000, help_text="origin URL to send the SendEvent to")
    player_url = models.CharField(max_length=2000, blank=True)
    event_type = models.CharField(max_length=16, choices=UplinkEventType.choices)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=UplinkState.choices, default=UplinkState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set just before the claimed attempt goes on the wire: a row whose lease ran out with it set may
    # have reached the origin (the worker died mid-send), so it is not resent on its own.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["state", "next_attempt_at", "id"])]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.url} ({self.state})"
