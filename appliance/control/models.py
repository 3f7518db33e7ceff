from django.db import models


class ReportEvent(models.Model):
    """Every report event id ever accepted from a node; the unique key makes ingestion exactly-once."""

    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="report_events")
    event_id = models.UUIDField()
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "event_id"], name="report_event_unique_node_id")]
        indexes = [models.Index(fields=["received_at"])]
