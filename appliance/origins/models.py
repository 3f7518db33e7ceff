from django.db import models

from appliance.core.models import TimeStampedModel


class CachePolicy(models.TextChoices):
    OBEY = "obey", "Obey the origin's Cache-Control"
    FORCE_TTL = "force_ttl", "Force a TTL when the origin sends no Cache-Control"
    NEVER = "never", "Never cache"


class TransportPreference(models.TextChoices):
    AUTO = "auto", "Automatic"
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP interleaved"


class SplitPolicy(models.TextChoices):
    AUTO = "auto", "Automatic"
    ALWAYS = "always", "Always split live streams"
    NEVER = "never", "Never split"


class PlayerAccess(models.TextChoices):
    OPEN = "open", "Open: any player"
    BASIC = "basic", "Basic authentication"
    DIGEST = "digest", "Digest authentication (SHA-256, MD5)"


DEFAULT_PLAYER_REALM = "RTSP proxy"


class Origin(TimeStampedModel):
    """An upstream RTSP server and the route prefix that reaches it through the proxy."""

    name = models.CharField(max_length=100, unique=True)
    base_url = models.CharField(max_length=2000)
    route_prefix = models.CharField(max_length=255, unique=True)
    allowed = models.BooleanField(default=True)
    username = models.CharField(max_length=255, blank=True)
    # Fernet token of the password (appliance.origins.credentials); never the password itself.
    password_encrypted = models.TextField(blank=True)
    cache_policy = models.CharField(max_length=16, choices=CachePolicy.choices, default=CachePolicy.OBEY)
    cache_ttl = models.PositiveIntegerField(default=0, help_text="seconds, used by force_ttl")
    stale_if_error = models.PositiveIntegerField(default=0, help_text="seconds a stale copy may be served")
    transport = models.CharField(max_length=8, choices=TransportPreference.choices,
                                 default=TransportPreference.AUTO)
    live = models.BooleanField(default=False)
    split = models.CharField(max_length=8, choices=SplitPolicy.choices, default=SplitPolicy.AUTO)
    tls_verify = models.BooleanField(
        default=True, verbose_name="Verify TLS certificate",
        help_text="rtsps:// origins: check the origin's certificate and host name (turn off only for an "
                  "origin with a self-signed certificate on a trusted network)")
    # Who may play this origin's content through the proxy (proxyd.rtsp.player_auth).
    player_access = models.CharField(max_length=8, choices=PlayerAccess.choices, default=PlayerAccess.OPEN)
    player_realm = models.CharField(max_length=128, default=DEFAULT_PLAYER_REALM,
                                    help_text="shown to players; the stored hashes depend on it")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)


class PlayerCredential(models.Model):
    """A player account of one origin: only H(A1) = H(username:realm:password) per Digest algorithm,
    never the password (appliance.origins.player_credentials). `realm` is the one hashed with."""

    origin = models.ForeignKey(Origin, on_delete=models.CASCADE, related_name="player_credentials")
    username = models.CharField(max_length=255)
    realm = models.CharField(max_length=128)
    ha1_md5 = models.CharField(max_length=32)
    ha1_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["username"]
        constraints = [models.UniqueConstraint(fields=["origin", "username"],
                                               name="player_credential_unique")]

    def __str__(self) -> str:
        return self.username
