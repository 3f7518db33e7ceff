"""Settings of the internal API tier (appliance/wsgi_internal.py): the nodes' /internal/v1/ only.

Node calls authenticate with a bearer token (ProxydTokenAuthentication), so the session, CSRF, user
and messages middleware only cost time there; without them the dashboard, admin and REST API would
break, so this tier's URLconf serves nothing else (plus the ops probes and its own /metrics).
"""

from appliance.settings import *  # noqa: F403  (everything else as the web tier)
from appliance.settings import MIDDLEWARE

BROWSER_ONLY_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
}
MIDDLEWARE = [name for name in MIDDLEWARE if name not in BROWSER_ONLY_MIDDLEWARE]
ROOT_URLCONF = "appliance.internal_urls"
