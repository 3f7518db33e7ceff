"""Celery application: configuration comes from Django settings (CELERY_* names); tasks are autodiscovered."""

import os
import sys

from celery import Celery

from appliance.ops import worker as worker_metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
worker_metrics.prepare_worker(sys.argv)  # before anything imports prometheus_client

celery_app = Celery("appliance")
celery_app.config_from_object("django.conf:settings", namespace="CELERY")
celery_app.autodiscover_tasks()
