"""WSGI entry, kept for tooling (manage.py check --deploy, debuggers); production serves asgi.py."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
application = get_wsgi_application()
