import hashlib
import hmac
import secrets

from django.db import models


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ProxyNode(models.Model):
    """One proxyd instance. Only a SHA-256 of its bearer token is stored."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    version = models.CharField(max_length=64, blank=True)
    listen = models.CharField(max_length=255, blank=True)  # as the node reports it
    # HOST:PORT its cache-cluster peers reach it at (proxyd --cluster-self); blank: `listen`, unless that
    # is a wildcard address
    rtsp_address = models.CharField(max_length=255, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    load_sessions = models.PositiveIntegerField(default=0)
    load_bandwidth_bps = models.BigIntegerField(default=0)
    cache_disk_full = models.BooleanField(default=False)  # as of its last report: fills cannot be stored
    enabled = models.BooleanField(default=True)
    # Origins this node serves. An origin assigned to no node is served by every node (see
    # appliance.origins.selectors.origins_for_node); the field lives here so assignment is a nodes migration.
    origins = models.ManyToManyField("origins.Origin", blank=True, related_name="nodes")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    def set_token(self, token: str) -> None:
        self.token_hash = hash_token(token)

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(self.token_hash, hash_token(token))
