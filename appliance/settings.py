"""The appliance's only settings module. Every knob comes from an APPLIANCE_* variable (see env.py).

DATABASE_URL unset -> SQLite under var/ (quick start); postgres://... -> PostgreSQL (production, tests).
REDIS_URL unset -> embedded Celery broker and in-memory channel layer.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from appliance.dburl import parse_database_url
from appliance.env import env_bool, env_fernet_keys, env_int, env_list, env_rate, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("APPLIANCE_VAR_DIR", str(BASE_DIR / "var")))

EMBEDDED = env_bool("APPLIANCE_EMBEDDED", False)
DEBUG = env_bool("APPLIANCE_DEBUG", False)
REDIS_URL = env_str("REDIS_URL", "")


def _secret_key() -> str:
    configured = env_secret("APPLIANCE_SECRET_KEY")
    if configured:
        return configured
    # First boot without a configured key: generate one and keep it, so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
# Fernet keys for origin passwords at rest (appliance.origins.credentials): the first encrypts, all decrypt.
# Unset: like the secret key, one is generated on first boot and kept in the state directory.
APPLIANCE_ORIGIN_CREDENTIALS_KEYS = env_fernet_keys("APPLIANCE_ORIGIN_CREDENTIALS_KEYS",
                                                    generated_file=VAR_DIR / "origin-credentials-key")
ALLOWED_HOSTS = env_list("APPLIANCE_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("APPLIANCE_CSRF_TRUSTED_ORIGINS", [])
# Behind nginx terminating TLS (deploy/nginx.conf): trust X-Forwarded-Proto; secure cookies, HSTS by default.
BEHIND_TLS_PROXY = env_bool("APPLIANCE_BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("APPLIANCE_SECURE_COOKIES", BEHIND_TLS_PROXY)
# Sent by SecurityMiddleware on HTTPS responses only; 0 turns HSTS off.
SECURE_HSTS_SECONDS = env_int("APPLIANCE_HSTS_SECONDS", 31_536_000 if BEHIND_TLS_PROXY else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("APPLIANCE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("APPLIANCE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = []
if BEHIND_TLS_PROXY:
    # nginx answers port 80 with a redirect to https; Django must not redirect too, because proxyd and
    # local probes talk plain HTTP to gunicorn on loopback (APPLIANCE_WEB_BIND).
    SILENCED_SYSTEM_CHECKS.append("security.W008")
if SECURE_HSTS_SECONDS and not SECURE_HSTS_PRELOAD:
    # Preloading commits the whole registrable domain to HTTPS in browsers for months: the owner's choice.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "appliance.ui.apps.StaticFilesConfig",  # django.contrib.staticfiles, minus unused chart libraries
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc files served locally (no CDN)
    "channels",
    "appliance.core",
    "appliance.nodes",
    "appliance.origins",
    "appliance.content",
    "appliance.playback",
    "appliance.uplink",
    "appliance.control",
    "appliance.history",
    "appliance.ui",
    "appliance.ops",
    "chartjs",  # django-chartjs: ships Chart.js as a static file (charts, no CDN)
]

MIDDLEWARE = [
    "appliance.ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "appliance.urls"
WSGI_APPLICATION = "appliance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": parse_database_url(env_str("DATABASE_URL", ""), sqlite_path=VAR_DIR / "appliance.sqlite3")}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("APPLIANCE_DB_CONN_MAX_AGE", 60, minimum=0)
# A bounded connection pool per process (psycopg_pool), for the ASGI web process under many nodes:
# there every request runs in a thread of its own and persistent per-thread connections pile up past
# PostgreSQL's max_connections. Requests beyond the pool wait up to the timeout (then 500). 0: no pool.
APPLIANCE_DB_POOL_MAX = env_int("APPLIANCE_DB_POOL_MAX", 0, minimum=0, maximum=1000)
APPLIANCE_DB_POOL_TIMEOUT = env_int("APPLIANCE_DB_POOL_TIMEOUT", 10, minimum=1)
if APPLIANCE_DB_POOL_MAX and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": APPLIANCE_DB_POOL_MAX,
                                               "timeout": APPLIANCE_DB_POOL_TIMEOUT}
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections (Django requires 0)
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and not DATABASES["default"]["NAME"].startswith(":"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = env_str("APPLIANCE_LOGIN_URL", "/admin/login/")
# Password logins (dashboard and admin) go through the failed-login limit (appliance.core.auth_limits).
AUTHENTICATION_BACKENDS = ["appliance.core.auth_backends.ThrottledModelBackend"]
# Failed logins: per client address within the window, and per username (0: no per-username limit).
APPLIANCE_LOGIN_MAX_FAILURES = env_int("APPLIANCE_LOGIN_MAX_FAILURES", 10, minimum=1)
APPLIANCE_LOGIN_MAX_FAILURES_PER_USER = env_int("APPLIANCE_LOGIN_MAX_FAILURES_PER_USER", 30, minimum=0)
APPLIANCE_LOGIN_FAILURE_WINDOW = env_int("APPLIANCE_LOGIN_FAILURE_WINDOW", 900, minimum=1)
# Invalid API tokens per client address within the window.
APPLIANCE_TOKEN_MAX_FAILURES = env_int("APPLIANCE_TOKEN_MAX_FAILURES", 20, minimum=1)
APPLIANCE_TOKEN_FAILURE_WINDOW = env_int("APPLIANCE_TOKEN_FAILURE_WINDOW", 900, minimum=1)

# The failure counters and API throttles live in the cache: Redis when there is one, so every web
# worker counts together; in-process memory in the quick start (a single web worker).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": env_str("APPLIANCE_CACHE_PREFIX", "appliance")}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("APPLIANCE_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("APPLIANCE_STATIC_ROOT", str(BASE_DIR / "staticfiles")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("APPLIANCE_LOG_LEVEL", "INFO").upper()},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns a missing credential into 401, not 403.
        "appliance.core.api_tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["appliance.core.permissions.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "appliance.core.api.StandardPagination",
    "PAGE_SIZE": env_int("APPLIANCE_API_PAGE_SIZE", 50, minimum=1, maximum=1000),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "appliance.core.api.exception_handler",
    # Requests per client address (anonymous) and per user; an empty APPLIANCE_API_THROTTLE_* turns one off.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("APPLIANCE_API_THROTTLE_ANON", "120/minute"),
        "user": env_rate("APPLIANCE_API_THROTTLE_USER", "3000/minute"),
    },
    # Client address = REMOTE_ADDR, which the uvicorn worker already took from a trusted proxy's
    # X-Forwarded-For; never the raw header, which any client can write.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RTSP caching proxy appliance API",
    "DESCRIPTION": "Public REST API of the appliance control plane.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ContentStateEnum": "appliance.content.models.ContentState",
        "RequestStateEnum": "appliance.content.models.RequestState",
        "UplinkStateEnum": "appliance.uplink.models.UplinkState",
        "EndReasonEnum": "appliance.playback.models.EndReason",
        "SplitStateEnum": "appliance.playback.models.SplitState",
        "SplitEndReasonEnum": "appliance.playback.models.SplitEndReason",
    },
}

# Limits of the internal API used by proxyd.
APPLIANCE_MAX_REPORT_EVENTS = env_int("APPLIANCE_MAX_REPORT_EVENTS", 1000, minimum=1, maximum=100_000)
APPLIANCE_MAX_REPORT_BYTES = env_int("APPLIANCE_MAX_REPORT_BYTES", 8 << 20, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(APPLIANCE_MAX_REPORT_BYTES, 2621440)
APPLIANCE_SNAPSHOT_MAX_PURGES = env_int("APPLIANCE_SNAPSHOT_MAX_PURGES", 500, minimum=1)
# Seconds a node's report event may wait for its batch; 0: each node keeps its own (proxyd: 1 s). With
# many nodes a few seconds cut the POSTs per second by that factor (docs/scaling.md); the dashboard lags as much.
APPLIANCE_REPORT_BATCH_DELAY = env_int("APPLIANCE_REPORT_BATCH_DELAY", 0, minimum=0, maximum=60)
# Seconds between a node's snapshot polls; 0: each node keeps its own (proxyd: 10 s). 1,000 nodes at
# 10 s are 100 polls a second; terminations and purges reach a node within one poll.
APPLIANCE_SNAPSHOT_POLL_INTERVAL = env_int("APPLIANCE_SNAPSHOT_POLL_INTERVAL", 0, minimum=0, maximum=300)
APPLIANCE_SNAPSHOT_REVALIDATED_WINDOW = env_int("APPLIANCE_SNAPSHOT_REVALIDATED_WINDOW", 3600, minimum=0)
APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS = env_int("APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS", 1_000_000, minimum=1)
# Play-log lists (API and page) count matching rows up to this many, or one page past the page asked
# for (at most APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS); beyond it the count says "at least" (an exact COUNT
# over 10M rows takes seconds; finding 10,000 rows of a broad filter took 0.5 s at 1M on a loaded machine).
APPLIANCE_PLAYLOG_COUNT_MAX = env_int("APPLIANCE_PLAYLOG_COUNT_MAX", 1_000, minimum=100)
APPLIANCE_REPORT_EVENT_RETENTION_DAYS = env_int("APPLIANCE_REPORT_EVENT_RETENTION_DAYS", 30, minimum=1)
APPLIANCE_REPORT_EVENT_PRUNE_BATCH = env_int("APPLIANCE_REPORT_EVENT_PRUNE_BATCH", 10_000, minimum=100)
APPLIANCE_UPLINK_MAX_ATTEMPTS = env_int("APPLIANCE_UPLINK_MAX_ATTEMPTS", 10, minimum=1)

# --- celery & channels (dashboard/tasks engineer) ---
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        # acks_late tasks come back this long after a worker died mid-task; above every hard time limit.
        "visibility_timeout": env_int("APPLIANCE_CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
else:
    # Quick start: kombu's filesystem transport, no broker process needed.
    _CELERY_DIR = VAR_DIR / "celery"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_CELERY_DIR / "queue"),
        "data_folder_out": str(_CELERY_DIR / "queue"),
        "processed_folder": str(_CELERY_DIR / "processed"),
        "store_processed": False,
        # Broadcast (pidbox) exchanges; without this kombu writes them to ./control/.
        "control_folder": str(_CELERY_DIR / "control"),
    }
    for _folder in ("queue", "processed", "control"):
        (_CELERY_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = env_bool("APPLIANCE_CELERY_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = env_str("APPLIANCE_CELERY_QUEUE", "appliance")
CELERY_TASK_IGNORE_RESULT = True  # no result backend: tasks write their outcome to the database
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE

# Task limits (seconds / counts). Each beat entry expires a little before the next run is due, so a
# backlog of missed runs is dropped instead of stacking up behind a slow worker.
APPLIANCE_REVALIDATE_INTERVAL = env_int("APPLIANCE_REVALIDATE_INTERVAL", 60, minimum=5)
APPLIANCE_REVALIDATE_AHEAD = env_int("APPLIANCE_REVALIDATE_AHEAD", 300, minimum=0)
APPLIANCE_REVALIDATE_BATCH = env_int("APPLIANCE_REVALIDATE_BATCH", 50, minimum=1, maximum=1000)
APPLIANCE_REVALIDATE_RETRY_AFTER = env_int("APPLIANCE_REVALIDATE_RETRY_AFTER", 120, minimum=1)
APPLIANCE_ORIGIN_TIMEOUT = env_int("APPLIANCE_ORIGIN_TIMEOUT", 5, minimum=1, maximum=120)
APPLIANCE_UPLINK_INTERVAL = env_int("APPLIANCE_UPLINK_INTERVAL", 15, minimum=2)
APPLIANCE_UPLINK_BATCH = env_int("APPLIANCE_UPLINK_BATCH", 100, minimum=1, maximum=5000)
APPLIANCE_UPLINK_LEASE = env_int("APPLIANCE_UPLINK_LEASE", 120, minimum=10)
APPLIANCE_UPLINK_BACKOFF_BASE = env_int("APPLIANCE_UPLINK_BACKOFF_BASE", 5, minimum=1)
APPLIANCE_UPLINK_BACKOFF_CAP = env_int("APPLIANCE_UPLINK_BACKOFF_CAP", 900, minimum=1)
APPLIANCE_UPLINK_SENT_RETENTION_DAYS = env_int("APPLIANCE_UPLINK_SENT_RETENTION_DAYS", 7, minimum=1)
APPLIANCE_HOUSEKEEPING_INTERVAL = env_int("APPLIANCE_HOUSEKEEPING_INTERVAL", 300, minimum=30)
# A node not seen (report or snapshot poll; proxyd polls every 10 s by default) for this long is
# offline: its load counts as zero and the check closes its open sessions and splits as lost.
# (Silent for APPLIANCE_NODE_STALE_SECONDS, below, it is shown stale first.)
APPLIANCE_NODE_OFFLINE_SECONDS = env_int("APPLIANCE_NODE_OFFLINE_SECONDS", 300, minimum=2)
# The nodes as one cache (proxyd.cluster): each cacheable URL is filled through the online node owning
# it. The snapshot lists every enabled node's RTSP address; the id marks requests between nodes.
APPLIANCE_CLUSTER_CACHE = env_bool("APPLIANCE_CLUSTER_CACHE", False)
APPLIANCE_CLUSTER_ID = env_str("APPLIANCE_CLUSTER_ID", "appliance")
APPLIANCE_NODE_CHECK_INTERVAL = env_int("APPLIANCE_NODE_CHECK_INTERVAL", 30, minimum=1)
APPLIANCE_NODE_CHECK_BATCH = env_int("APPLIANCE_NODE_CHECK_BATCH", 100, minimum=1, maximum=10_000)
APPLIANCE_LIVE_STATS_INTERVAL = env_int("APPLIANCE_LIVE_STATS_INTERVAL", 10, minimum=2)
# Report batches' live events are sent by each web worker's event loop, several requests' together: at most
# this much later (the dashboard's extra lag), sooner when this many are waiting.
APPLIANCE_LIVE_COALESCE_MS = env_int("APPLIANCE_LIVE_COALESCE_MS", 100, minimum=0, maximum=5000)
APPLIANCE_LIVE_COALESCE_EVENTS = env_int("APPLIANCE_LIVE_COALESCE_EVENTS", 1000, minimum=1, maximum=100_000)
APPLIANCE_HIT_RATIO_WINDOW = env_int("APPLIANCE_HIT_RATIO_WINDOW", 86400, minimum=60)
APPLIANCE_CACHE_QUOTA_BYTES = env_int("APPLIANCE_CACHE_QUOTA_BYTES", 0, minimum=0)  # 0: no quota
# Identity towards origins: "User-Agent: WMCacheProxy/<version> guid/<guid>" (MS-RTSP 4.6).
APPLIANCE_PROXY_VERSION = env_str("APPLIANCE_PROXY_VERSION", "9.0.0.1")
APPLIANCE_PROXY_GUID = env_str("APPLIANCE_PROXY_GUID", "")  # empty: derived from SECRET_KEY, stable per install


def _every(task: str, interval: int) -> dict:
    """A beat entry run every `interval` seconds; a run not started within 90 % of it is dropped
    (the next one comes soon), so a stopped worker does not find a backlog of the same task."""
    return {"task": task, "schedule": float(interval), "options": {"expires": interval * 0.9}}


CELERY_BEAT_SCHEDULE: dict = {
    "revalidate-due": _every("content.revalidate_due", APPLIANCE_REVALIDATE_INTERVAL),
    "uplink-send-pending": _every("uplink.send_pending", APPLIANCE_UPLINK_INTERVAL),
    "housekeeping": _every("content.housekeeping", APPLIANCE_HOUSEKEEPING_INTERVAL),
    "live-stats": _every("playback.publish_live_stats", APPLIANCE_LIVE_STATS_INTERVAL),
    "nodes-close-lost": _every("nodes.close_lost", APPLIANCE_NODE_CHECK_INTERVAL),
    "uplink-prune-sent": _every("uplink.prune_sent", APPLIANCE_HOUSEKEEPING_INTERVAL),
    "report-events-prune": _every("control.prune_report_events", APPLIANCE_HOUSEKEEPING_INTERVAL),
}
# Report roll-ups: ingest marks play logs pending; beat folds them in bulk every interval (reports fold
# the rest first, so they are exact whatever the lag), at most BATCH rows per transaction.
APPLIANCE_ROLLUP_FOLD_INTERVAL = env_int("APPLIANCE_ROLLUP_FOLD_INTERVAL", 5, minimum=1)
APPLIANCE_ROLLUP_FOLD_BATCH = env_int("APPLIANCE_ROLLUP_FOLD_BATCH", 20_000, minimum=100, maximum=1_000_000)
APPLIANCE_ROLLUP_FOLD_MAX_BATCHES = env_int("APPLIANCE_ROLLUP_FOLD_MAX_BATCHES", 20, minimum=1)
CELERY_BEAT_SCHEDULE["rollup-fold"] = _every("playback.fold_rollups", APPLIANCE_ROLLUP_FOLD_INTERVAL)

# --- traffic history (appliance.history) ---
APPLIANCE_HISTORY_ROLLUP_INTERVAL = env_int("APPLIANCE_HISTORY_ROLLUP_INTERVAL", 60, minimum=10)
APPLIANCE_HISTORY_LOOKBACK_MINUTES = env_int("APPLIANCE_HISTORY_LOOKBACK_MINUTES", 10, minimum=1,
                                             maximum=1440)
APPLIANCE_HISTORY_MINUTE_RETENTION_HOURS = env_int("APPLIANCE_HISTORY_MINUTE_RETENTION_HOURS", 48, minimum=2)
APPLIANCE_HISTORY_HOUR_RETENTION_DAYS = env_int("APPLIANCE_HISTORY_HOUR_RETENTION_DAYS", 35, minimum=2)
APPLIANCE_HISTORY_DAY_RETENTION_DAYS = env_int("APPLIANCE_HISTORY_DAY_RETENTION_DAYS", 800, minimum=2)
APPLIANCE_HISTORY_PRUNE_BATCH = env_int("APPLIANCE_HISTORY_PRUNE_BATCH", 100_000, minimum=100)
APPLIANCE_HISTORY_MAX_POINTS = env_int("APPLIANCE_HISTORY_MAX_POINTS", 3000, minimum=10)
APPLIANCE_NODE_STALE_SECONDS = env_int("APPLIANCE_NODE_STALE_SECONDS", 60, minimum=5)
APPLIANCE_DASHBOARD_MAX_ROWS = env_int("APPLIANCE_DASHBOARD_MAX_ROWS", 200, minimum=10)
APPLIANCE_REPORT_MAX_ROWS = env_int("APPLIANCE_REPORT_MAX_ROWS", 500, minimum=1, maximum=100_000)
# Roll-up report rows read by the first page (ORDER BY ... LIMIT in SQL; later pages read their own rows)
APPLIANCE_REPORT_PREFETCH_ROWS = env_int("APPLIANCE_REPORT_PREFETCH_ROWS", 500, minimum=1, maximum=100_000)
# PostgreSQL parallel workers of by-content's week ranking (rollup_reports.UnionRanking): 0, its in-memory sum
# runs in the request's own process (twice as fast at 10M rows on 2 busy cores: workers only contend)
APPLIANCE_REPORT_RANKING_PARALLEL_WORKERS = env_int("APPLIANCE_REPORT_RANKING_PARALLEL_WORKERS", 0, minimum=0,
                                                    maximum=64)
# PostgreSQL work_mem (MB) of a url-prefix report read from the raw play logs (rollup_reports._url_prefix_raw_report):
# its sort by group key (~100 bytes a row, 100,000 rows for a hot prefix over a month at 10M) stays in memory
APPLIANCE_REPORT_URL_PREFIX_WORK_MEM_MB = env_int("APPLIANCE_REPORT_URL_PREFIX_WORK_MEM_MB", 16, minimum=1,
                                                  maximum=1024)
APPLIANCE_DASHBOARD_TOP_CONTENT = env_int("APPLIANCE_DASHBOARD_TOP_CONTENT", 10, minimum=1, maximum=100)
APPLIANCE_ORIGIN_PROBE_INTERVAL = env_int("APPLIANCE_ORIGIN_PROBE_INTERVAL", 60, minimum=0)  # 0: no probes
CELERY_BEAT_SCHEDULE.update({
    **({"history-probe-origins": _every("history.probe_origins", APPLIANCE_ORIGIN_PROBE_INTERVAL)}
       if APPLIANCE_ORIGIN_PROBE_INTERVAL else {}),
    "history-rollup": _every("history.rollup", APPLIANCE_HISTORY_ROLLUP_INTERVAL),
    "history-prune": _every("history.prune", APPLIANCE_HOUSEKEEPING_INTERVAL),
})

ASGI_APPLICATION = "appliance.asgi.application"
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": [REDIS_URL],
                                             "prefix": env_str("APPLIANCE_CHANNELS_PREFIX", "asgi")}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Without nginx in front (quick start, tests) the ASGI app serves static files itself.
APPLIANCE_SERVE_STATIC = env_bool("APPLIANCE_SERVE_STATIC", DEBUG or EMBEDDED)
# --- end celery & channels ---

# --- operations: /metrics, /healthz, /readyz (appliance/ops) ---
# Addresses allowed to read them (comma-separated IPs or networks); nginx does not forward them.
try:
    APPLIANCE_METRICS_ALLOW_NETWORKS = [ipaddress.ip_network(n, strict=False) for n in
                                        env_list("APPLIANCE_METRICS_ALLOW_IPS", ["127.0.0.1", "::1"])]
except ValueError as exc:
    raise ImproperlyConfigured(f"APPLIANCE_METRICS_ALLOW_IPS: {exc}") from None
# Seconds each /readyz dependency check (Redis) may take.
APPLIANCE_READY_TIMEOUT = env_int("APPLIANCE_READY_TIMEOUT", 2, minimum=1, maximum=60)
# HOST:PORT of the Celery worker's own metrics listener; empty: off.
APPLIANCE_WORKER_METRICS_LISTEN = env_str("APPLIANCE_WORKER_METRICS_LISTEN", "")
if APPLIANCE_WORKER_METRICS_LISTEN and not APPLIANCE_WORKER_METRICS_LISTEN.rpartition(":")[2].isdigit():
    raise ImproperlyConfigured("APPLIANCE_WORKER_METRICS_LISTEN must be HOST:PORT, "
                               f"got {APPLIANCE_WORKER_METRICS_LISTEN!r}")
