"""Lenient readers for report `data` values: proxyd is trusted, but a bad value must not sink a batch."""
from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_datetime


def as_int(value, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return max(min(value, 2**63 - 1), -(2**63))
    if isinstance(value, float) and value == value:
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def as_optional_int(value) -> int | None:
    return None if value is None else as_int(value, default=None)  # type: ignore[arg-type]


def as_float(value, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number == number else default


def as_str(value, max_length: int) -> str:
    if value is None:
        return ""
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value[:max_length]  # the common case: nothing to clean (ASCII has no surrogates)
    text = value if isinstance(value, str) else str(value)
    # PostgreSQL text cannot hold NUL; lone surrogates cannot be encoded to UTF-8.
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:max_length]


def as_datetime(value) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def as_str_list(value, max_items: int = 16, max_length: int = 16) -> list[str]:
    if not isinstance(value, list):
        return []
    return [as_str(item, max_length) for item in value[:max_items]]
