"""Revalidation: did the origin's content change since we stored it? (Figure 20 "expiration extended?")

MS-RTSP defines no conditional requests (If-Match/If-None-Match are syntax only, 2.2.6.5-6). WMS
compares a content "version": last-modified, size and entity tags. In RTSP these surface as the
``Last-Modified`` and ``ETag`` headers and the ``x-wms-content-size`` Cache-Control directive.

Rules (documented decisions):
- a validator is compared only when both sides carry it: a GetContentInfo response may legitimately
  omit headers that the Describe response had, so a missing validator is "unknown", not "changed";
- ETags compare by opaque value (a ``W/`` weak prefix is ignored: we never do byte ranges);
- Last-Modified compares as an instant when both parse as HTTP dates, else as normalised text;
- SDP compares line by line after dropping lines that differ on every response of an unchanged
  presentation: ``o=`` (session id/version are regenerated per DESCRIBE by many servers, e.g.
  gst-rtsp-server) and ``a=ssrc:`` (random per session). Line endings and blank lines are ignored.
- nothing comparable at all: ``content_changed`` says False, and the caller applies Figure 20's
  literal rule (a positive max-age in the GCI response means the expiration was extended).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from proxyd.wm.cache_control import parse_cache_control

_VOLATILE_SDP_PREFIXES = ("o=", "a=ssrc:")


@dataclass(frozen=True)
class Validators:
    last_modified: str | None = None
    etag: str | None = None
    content_size: int | None = None

    @property
    def empty(self) -> bool:
        return self.last_modified is None and self.etag is None and self.content_size is None


def validators_from_headers(headers: Iterable[tuple[str, str]]) -> Validators:
    """Pick Last-Modified, ETag and x-wms-content-size out of (name, value) header pairs."""
    last_modified = etag = None
    cache_control: list[str] = []
    for name, value in headers:
        lname = name.strip().lower()
        if lname == "last-modified" and last_modified is None:
            last_modified = value.strip() or None
        elif lname == "etag" and etag is None:
            etag = value.strip() or None
        elif lname == "cache-control":
            cache_control.append(value)
    size = parse_cache_control(", ".join(cache_control)).content_size if cache_control else None
    return Validators(last_modified=last_modified, etag=etag, content_size=size)


def _etag_value(tag: str) -> str:
    tag = tag.strip()
    if tag[:2].upper() == "W/":
        tag = tag[2:].strip()
    return tag.strip('"')


def _same_instant(a: str, b: str) -> bool:
    try:
        return parsedate_to_datetime(a) == parsedate_to_datetime(b)
    except (TypeError, ValueError, IndexError, OverflowError):
        return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def _sdp_lines(sdp: bytes | str) -> list[str]:
    text = sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(_VOLATILE_SDP_PREFIXES)]


def content_changed(
    stored: Validators,
    new: Validators,
    stored_sdp: bytes | str | None = None,
    new_sdp: bytes | str | None = None,
) -> bool:
    """True when any validator (or the SDP) present on both sides differs."""
    if stored.etag is not None and new.etag is not None:
        if _etag_value(stored.etag) != _etag_value(new.etag):
            return True
    if stored.last_modified is not None and new.last_modified is not None:
        if not _same_instant(stored.last_modified, new.last_modified):
            return True
    if stored.content_size is not None and new.content_size is not None:
        if stored.content_size != new.content_size:
            return True
    if stored_sdp is not None and new_sdp is not None:
        if _sdp_lines(stored_sdp) != _sdp_lines(new_sdp):
            return True
    return False


def comparable(stored: Validators, new: Validators, stored_sdp=None, new_sdp=None) -> bool:
    """Whether content_changed had anything to compare (else use the max-age rule)."""
    pairs = (
        (stored.etag, new.etag),
        (stored.last_modified, new.last_modified),
        (stored.content_size, new.content_size),
        (stored_sdp, new_sdp),
    )
    return any(a is not None and b is not None for a, b in pairs)
