"""Per-worker resources under pytest-xdist, set before Django reads its settings.

Loaded with `-p tests.xdist_env` (pyproject addopts), so it runs at argument parsing, before
pytest-django imports appliance.settings. pytest-django already gives each worker its own test
database (suffix _gwN); this gives each worker its own Redis databases, so channel-layer groups and
Celery broadcasts of two workers never meet: worker gwN adds N * REDIS_DB_STRIDE (mod 16, Redis'
default "databases") to the db numbers of REDIS_URL and APPLIANCE_TEST_CELERY_REDIS_DB. With the
defaults (0 and 11: one even, one odd) and a stride of 2, eight workers get sixteen distinct databases.
"""

from __future__ import annotations

import os
import re

REDIS_DB_STRIDE = int(os.environ.get("APPLIANCE_TEST_REDIS_DB_STRIDE", "2"))
REDIS_DATABASES = 16  # Redis' default "databases" (./runtests starts it so); db numbers wrap inside it


def worker_index() -> int:
    """0 outside xdist; N for worker gwN."""
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) if match else 0


def shifted_db(db: int, index: int) -> int:
    return (db + index * REDIS_DB_STRIDE) % REDIS_DATABASES


def redis_url_for_worker(url: str, index: int) -> str:
    """`redis://host:port/N` with N shifted for worker `index`; a URL without a db number means db 0."""
    match = re.fullmatch(r"(rediss?://[^/?#]+)(?:/(\d*))?(\?.*)?", url)
    if not match:
        return url
    base, db, query = match.group(1), int(match.group(2) or 0), match.group(3) or ""
    return f"{base}/{shifted_db(db, index)}{query}"


def apply(environ: os._Environ | dict = os.environ) -> None:
    index = worker_index()
    if index == 0:
        return
    if environ.get("REDIS_URL"):
        environ["REDIS_URL"] = redis_url_for_worker(environ["REDIS_URL"], index)
    celery_db = int(environ.get("APPLIANCE_TEST_CELERY_REDIS_DB", "11"))
    environ["APPLIANCE_TEST_CELERY_REDIS_DB"] = str(shifted_db(celery_db, index))


apply()
