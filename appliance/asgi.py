"""ASGI entry point: HTTP goes to Django, websockets go through session auth to appliance.routing.

Served in production by gunicorn with uvicorn_worker.UvicornWorker (deploy/gunicorn.conf.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")

# Django must be set up before anything imports models (consumers, routing).
django_http_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from appliance import routing  # noqa: E402


def _http_app():
    # Without nginx in front (quick start, tests) Django serves its own static files.
    if getattr(settings, "APPLIANCE_SERVE_STATIC", settings.DEBUG):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        return ASGIStaticFilesHandler(django_http_app)
    return django_http_app


application = ProtocolTypeRouter(
    {
        "http": _http_app(),
        # The Origin check stops other sites from opening the dashboard socket with our cookies.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))),
    }
)
