"""Logging setup and per-connection context (peer, CSeq, session id on every line)."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "proxyd"


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def context(peer: str, cseq: int | str | None = None, session: str | None = None) -> str:
    return f"peer={peer} cseq={cseq if cseq is not None else '-'} session={session or '-'}"
