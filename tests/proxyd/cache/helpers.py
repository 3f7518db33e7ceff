"""Helpers for cache tests: wait for proxyd log lines, list committed entries."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

POLL_S = 0.05


def wait_for_log(path: Path, pattern: str, *, count: int = 1, timeout: float = 30.0) -> list[str]:
    """Lines of proxyd's log matching `pattern` once there are at least `count` (deadline: timeout)."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = [line for line in path.read_text(errors="replace").splitlines() if regex.search(line)]
        except FileNotFoundError:
            lines = []
        if len(lines) >= count:
            return lines
        if time.monotonic() >= deadline:
            tail = path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
            raise TimeoutError(f"{pattern!r} x{count} not in {path} after {timeout}s\n{tail}")
        time.sleep(POLL_S)  # polling a file: the only way to wait on another process's output here


def committed_urls(cache_dir: Path) -> list[str]:
    urls = []
    for meta in sorted((cache_dir / "entries").glob("*/meta.json")):
        urls.append(json.loads(meta.read_text())["body"]["url"])
    return urls


def store_bytes(cache_dir: Path) -> int:
    return sum(f.stat().st_size for f in (cache_dir / "entries").glob("*/*") if f.is_file())
