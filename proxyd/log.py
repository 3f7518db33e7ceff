"""Logging setup and per-connection context (peer, CSeq, session id on every line)."""

from __future__ import annotations

import json
import logging
import re
import sys

LOGGER_NAME = "proxyd"
CONTEXT = re.compile(r"\bpeer=(?P<peer>\S+) cseq=(?P<cseq>\S+) session=(?P<session>\S+)")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the context() part of a message also becomes peer/cseq/session fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": message}
        found = CONTEXT.search(message)
        if found:
            line.update({k: v for k, v in found.groupdict().items() if v != "-"})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def context(peer: str, cseq: int | str | None = None, session: str | None = None) -> str:
    return f"peer={peer} cseq={cseq if cseq is not None else '-'} session={session or '-'}"
