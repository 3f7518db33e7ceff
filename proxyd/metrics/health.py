"""/readyz checks: the RTSP listener accepts, the control plane answered recently, the report spool
is not backing up, the cache directory takes writes. Each gives (ok, detail)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxyd.config import Config
    from proxyd.control.plane import ControlPlane


async def readiness(config: Config, listening: bool, plane: ControlPlane | None) -> dict[str, dict]:
    limits = config.limits
    checks = {"listening": _check(listening, "RTSP listener " + ("accepting" if listening else "closed"))}
    if plane is not None:
        age = plane.snapshot.age_seconds(time.monotonic())
        if age is None:
            checks["snapshot"] = _check(False, "no snapshot fetched from the control plane yet")
        else:
            limit = limits.ready_max_snapshot_age
            checks["snapshot"] = _check(age <= limit, f"last answer {age:.0f}s ago (limit {limit:g}s)")
        spooled = plane.spool.bytes
        checks["spool"] = _check(spooled <= limits.ready_max_spool_bytes,
                                 f"{spooled} bytes spooled (limit {limits.ready_max_spool_bytes})")
    if config.cache_dir:
        problem = await asyncio.to_thread(_write_probe, Path(config.cache_dir))
        checks["cache_dir"] = _check(problem is None, problem or f"{config.cache_dir} writable")
    return checks


def _check(ok: bool, detail: str) -> dict:
    return {"ok": ok, "detail": detail}


def _write_probe(directory: Path) -> str | None:
    """None when a file can be created, written and removed in `directory` (created like the cache
    store would, which happens only at the first DESCRIBE), else why not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".ready-probe-", dir=directory)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return f"{directory} not writable: {exc.strerror or exc}"
    return None
