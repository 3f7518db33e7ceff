"""Traffic history: one row per node per minute, hour and day (the same counters at three grains)."""

from django.db import models


class Grain(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


GRAIN_SECONDS = {Grain.MINUTE: 60, Grain.HOUR: 3600, Grain.DAY: 86400}

# Counters added at ingestion (exact at every grain, whatever order the report batches arrive in).
COUNTERS = ("bytes_out", "origin_bytes", "cache_bytes_out", "requests", "cache_requests", "errors")
# Gauges set by the roll-up task (appliance.history.services.history_rollup): a minute's value, an
# hour's or a day's is the largest of its minutes.
GAUGES = ("sessions", "players", "spool_bytes")


class TrafficBucket(models.Model):
    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="traffic")
    grain = models.CharField(max_length=6, choices=Grain.choices)
    start = models.DateTimeField(help_text="start of the bucket (a local midnight for days)")
    bytes_out = models.BigIntegerField(default=0, help_text="bytes sent to players")
    origin_bytes = models.BigIntegerField(
        default=0,
        help_text="bytes received from origins: relayed sessions, live split hubs, completed cache fills",
    )
    cache_bytes_out = models.BigIntegerField(default=0, help_text="bytes sent to players from the cache")
    requests = models.BigIntegerField(default=0, help_text="sessions started")
    cache_requests = models.BigIntegerField(
        default=0, help_text="sessions started that were served from the cache"
    )
    errors = models.BigIntegerField(default=0, help_text="sessions and live splits ended by an origin error")
    sessions = models.IntegerField(default=0, help_text="sessions open during the bucket (largest minute)")
    players = models.IntegerField(
        default=0, help_text="distinct player addresses with a session open (largest minute)"
    )
    spool_bytes = models.BigIntegerField(default=0, help_text="largest report spool the node reported")

    class Meta:
        ordering = ["start", "node_id"]
        constraints = [
            models.UniqueConstraint(fields=["node", "grain", "start"], name="traffic_unique_bucket")
        ]
        indexes = [models.Index(fields=["grain", "start"])]

    def __str__(self) -> str:
        return f"{self.node_id}/{self.grain}/{self.start:%Y-%m-%dT%H:%M}"


class OriginCheck(models.Model):
    """One OPTIONS round trip from the control plane to an origin (history.probe_origin): its latency."""

    origin = models.ForeignKey("origins.Origin", on_delete=models.CASCADE, related_name="checks")
    at = models.DateTimeField()
    status = models.IntegerField(null=True, blank=True, help_text="RTSP status; null: no answer")
    ok = models.BooleanField(help_text="answered with a status below 500")
    latency_ms = models.FloatField(null=True, blank=True, help_text="request to response; null: no answer")
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["origin", "at"]), models.Index(fields=["at"])]
