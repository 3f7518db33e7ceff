"""Publish live-state changes after commit, through appliance.playback.live when it is installed."""
from __future__ import annotations

import importlib
import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def _publisher(name: str = "publish"):
    try:
        return getattr(importlib.import_module("appliance.playback.live"), name)
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


def publish_many_after_commit(events: list[tuple[str, dict]]) -> None:
    """Several live events from one transaction, sent together after commit."""
    publish_many = _publisher("publish_many")
    if publish_many is None or not events:
        return

    def send() -> None:
        try:
            publish_many(events)
        except Exception:  # the dashboard feed must never break ingestion
            logger.exception("live publish of %d events failed", len(events))

    transaction.on_commit(send)
