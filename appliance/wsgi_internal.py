"""WSGI entry of the internal API tier: the nodes' /internal/v1/ (report batches, snapshot polls).

Served by gunicorn with gthread workers (deploy/gunicorn-internal.conf.py), beside the ASGI web process:
a node call needs no websocket, so it skips asgiref's thread hop and the async middleware adaptation,
runs with the browser-only middleware left out (appliance/settings_internal.py), and sends the dashboard's
live updates on one lasting event loop (appliance/core/background_loop.py).
"""
import os

from django.core.wsgi import get_wsgi_application

# Not setdefault: appliance.env may name the web tier's settings for every process.
os.environ["DJANGO_SETTINGS_MODULE"] = "appliance.settings_internal"
application = get_wsgi_application()

from appliance.playback.live import send_on_background_loop  # noqa: E402  (after Django's set-up)

send_on_background_loop()
