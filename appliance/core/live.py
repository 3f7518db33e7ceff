"""Publish live-state changes after commit, through appliance.playback.live when it is installed."""
from __future__ import annotations

import importlib
import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def _publisher():
    try:
        return importlib.import_module("appliance.playback.live").publish
    except (ImportError, AttributeError):
        return None


def publish_after_commit(kind: str, payload: dict) -> None:
    publish = _publisher()
    if publish is None:
        return

    def send() -> None:
        try:
            publish(kind, payload)
        except Exception:  # the dashboard feed must never break ingestion
            logger.exception("live publish of %s failed", kind)

    transaction.on_commit(send)
