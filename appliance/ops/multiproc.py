"""prometheus-client's multiprocess mode for the pre-forking servers (gunicorn workers, Celery's pool):
each child writes its counters to files in one directory, the scrape sums them. The directory must be
chosen before prometheus_client is first imported, in the parent, so this module never imports it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_directory(directory: Path) -> Path:
    """Start from an empty `directory` (counters of a previous run must not add up) and point
    prometheus_client at it; an operator-set PROMETHEUS_MULTIPROC_DIR wins (and is not wiped)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    return directory


def active() -> bool:
    return bool(os.environ.get(ENV))
