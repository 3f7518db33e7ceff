"""MS-RTSP Cache-Control ([MS-RTSP] 2.2.6.2): parse, serialize, and the proxy's cacheability decision.

The MS-RTSP meaning differs from HTTP's: ``no-cache`` forbids caching outright (2.2.6.2.3), ``private``
binds proxies too (2.2.6.2.6), and caching is opt-in: a receiver MUST NOT cache unless ``public``,
``proxy-revalidate`` or ``must-revalidate`` allows it (3.1.5.2).

Reading of ``must-revalidate`` (documented decision): 2.2.6.2.2 says a proxy MUST ignore it, and that
sentence sits in the definition of the *revalidation requirement*. 3.1.5.2 separately lists it as one
of the three tokens that explicitly *permit* caching. We therefore keep it as a permission and ignore it
as a revalidation rule: with ``must-revalidate`` alone the proxy caches and takes freshness from
``max-age`` only (brief checklist 29).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

MAX_DELTA_SECONDS = 2**31  # RFC 2616 14.9.3: larger delta-seconds are read as 2^31
DEFAULT_MAX_DIRECTIVES = 32  # the grammar allows 12; we read a few more leniently, then stop
EVENT_NAMES = ("remote-open", "remote-close", "remote-log")  # 2.2.6.2.10
STREAM_PROPS = ("broadcast", "playlist")  # 2.2.6.2.12

CachePolicy = Literal["obey", "force_ttl", "never"]
SplitPolicy = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class CacheControl:
    """One Cache-Control header as read from the wire. Absent directives are False / None."""

    max_age: int | None = None
    must_revalidate: bool = False
    no_cache: bool = False
    no_store: bool = False
    no_user_cache: bool = False
    private: bool = False
    proxy_revalidate: bool = False
    public: bool = False
    content_size: int | None = None
    event_subscription: tuple[str, ...] | None = None  # None: directive absent
    proxy_split: bool = False
    stream_types: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # kept for diagnostics, ignored (2.2.6: unknown tokens MUST be ignored)
    errors: tuple[str, ...] = ()  # directives we could not read

    @property
    def is_broadcast(self) -> bool:
        return "broadcast" in self.stream_types

    @property
    def is_playlist(self) -> bool:
        return "playlist" in self.stream_types


def is_broadcast(cc: CacheControl | None) -> bool:
    """``x-wms-stream-type`` lists ``broadcast``: live content, a split candidate (2.2.6.2.12)."""
    return cc is not None and cc.is_broadcast


def _split_directives(value: str) -> list[str]:
    """Split on commas outside double quotes; an unterminated quote runs to the end of the value."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith('"'):
        raw = raw[1:]
        if raw.endswith('"'):
            raw = raw[:-1]
    return raw.strip()


def _delta_seconds(raw: str) -> int | None:
    text = _unquote(raw)
    if not text.isascii() or not text.isdigit():
        return None
    return min(int(text), MAX_DELTA_SECONDS)


def _token_list(raw: str) -> tuple[str, ...]:
    items = []
    for item in _unquote(raw).split(","):
        token = item.strip().strip('"').strip().lower()
        if token and token not in items:
            items.append(token)
    return tuple(items)


_FLAGS = {
    "must-revalidate": "must_revalidate",
    "no-cache": "no_cache",
    "no-store": "no_store",
    "no-user-cache": "no_user_cache",
    "private": "private",
    "proxy-revalidate": "proxy_revalidate",
    "public": "public",
    "x-wms-proxy-split": "proxy_split",
}


def parse_cache_control(value: str | None, *, max_directives: int = DEFAULT_MAX_DIRECTIVES) -> CacheControl:
    """Read a Cache-Control value leniently; never raises. Several header lines: join them with ", ".

    Names are case-insensitive; the first occurrence of a valued directive wins; a bad value is
    recorded in ``errors`` and the directive is treated as absent.
    """
    if not value:
        return CacheControl()
    fields: dict[str, object] = {}
    unknown: list[str] = []
    errors: list[str] = []
    directives = _split_directives(value)
    if len(directives) > max_directives:
        errors.append(f"more than {max_directives} directives; the rest ignored")
        directives = directives[:max_directives]
    for directive in directives:
        name, sep, raw = directive.partition("=")
        name = name.strip().lower()
        if name in _FLAGS:
            fields[_FLAGS[name]] = True
            continue
        if name in ("max-age", "x-wms-content-size"):
            key = "max_age" if name == "max-age" else "content_size"
            number = _delta_seconds(raw) if sep else None
            if number is None:
                errors.append(f"bad value in {directive!r}")
            elif key in fields:
                errors.append(f"duplicate {name}; first kept")
            else:
                fields[key] = number
        elif name in ("x-wms-event-subscription", "x-wms-stream-type"):
            key = "event_subscription" if name == "x-wms-event-subscription" else "stream_types"
            if key not in fields:
                fields[key] = _token_list(raw) if sep else ()
        else:
            unknown.append(directive)
    return CacheControl(**fields, unknown=tuple(unknown), errors=tuple(errors))  # type: ignore[arg-type]


def format_cache_control(cc: CacheControl) -> str:
    """Serialize strictly: only the 12 MS-RTSP directives, lower case, canonical order; unknowns dropped.

    Returns "" when no directive is set (the caller then omits the header or sends ``no-cache``).
    """
    out: list[str] = []
    if cc.no_cache:
        out.append("no-cache")
    if cc.content_size is not None:
        out.append(f"x-wms-content-size={cc.content_size}")
    if cc.max_age is not None:
        out.append(f"max-age={cc.max_age}")
    for flag, attr in _FLAGS.items():
        if flag != "no-cache" and getattr(cc, attr):
            out.append(flag)
    events = [e for e in (cc.event_subscription or ()) if e in EVENT_NAMES]
    if events:
        out.append(f'x-wms-event-subscription="{",".join(events)}"')
    props = [p for p in cc.stream_types if p in STREAM_PROPS]
    if props:
        out.append(f'x-wms-stream-type="{",".join(props)}"')
    return ", ".join(out)


def reemit_for_hit(cc: CacheControl, *, age_seconds: float) -> str:
    """Cache-Control the proxy sends downstream when serving a stored entry (Describe/GCI/Announce, 4.6).

    MS-RTSP has no Age header, so max-age is lowered to the remaining lifetime (never below 0); every
    other directive is passed on as stored, so players still see no-user-cache and the subscriptions.
    """
    if cc.max_age is None:
        return format_cache_control(cc)
    remaining = max(0, cc.max_age - max(0, int(age_seconds)))
    return format_cache_control(replace(cc, max_age=remaining))


@dataclass(frozen=True)
class CacheDecision:
    cacheable: bool
    ttl_seconds: int | None  # None when not cacheable; 0: stale at once, revalidate on every use
    revalidate_before_serving: bool  # a stale copy is never served without a successful GCI
    splittable: bool  # one upstream session may feed many players
    reason: str  # stable identifier, see decide_cacheability


def _splittable(cc: CacheControl | None, split_policy: SplitPolicy) -> bool:
    if split_policy == "never" or (cc is not None and cc.private):
        return False  # private: "MUST NOT be shared by other proxy servers" (2.2.6.2.6)
    return split_policy == "always" or (cc is not None and cc.proxy_split)  # 2.2.6.2.11


def decide_cacheability(
    cc: CacheControl | None,
    *,
    policy: CachePolicy,
    forced_ttl: int,
    auth_challenged: bool,
    live: bool,
    split_policy: SplitPolicy = "auto",
) -> CacheDecision:
    """Whether an origin Describe/GCI response may be cached and shared (brief 3.3, rules in this order).

    - auth challenge (401/407 on GCI or Describe): neither cached nor split (WMS product behaviour);
    - operator ``live`` or ``x-wms-stream-type`` broadcast: never cached; split only if allowed;
    - operator policy ``never``: not cached;
    - no header: ``obey`` does not cache (caching is opt-in, 3.1.5.2); ``force_ttl`` caches for forced_ttl;
    - ``no-cache`` (2.2.6.2.3), ``private`` (2.2.6.2.6), ``no-store`` (2.2.6.2.4: our store is on disk): not cached;
    - otherwise cached only with ``public``, ``proxy-revalidate`` or ``must-revalidate`` (3.1.5.2);
    - ``max-age`` sets the TTL (2.2.6.2.1); without it the entry is stale at once (TTL 0);
    - ``proxy-revalidate`` forbids serving a stale copy unrevalidated (2.2.6.2.7); ``must-revalidate`` is
      ignored for this (2.2.6.2.2).
    """
    def no(reason: str, splittable: bool = False) -> CacheDecision:
        return CacheDecision(False, None, False, splittable, reason)

    if auth_challenged:
        return no("auth-challenged")
    splittable = _splittable(cc, split_policy)
    if live:
        return no("live", splittable)
    if cc is not None and cc.is_broadcast:
        return no("broadcast", splittable)
    if policy == "never":
        return no("policy-never", splittable)
    if cc is None:
        if policy == "force_ttl":
            return CacheDecision(True, max(0, forced_ttl), False, splittable, "forced-ttl")
        return no("no-cache-control", splittable)
    if cc.no_cache:
        return no("no-cache", splittable)
    if cc.private:
        return no("private")
    if cc.no_store:
        return no("no-store", splittable)
    if cc.public:
        reason = "public"
    elif cc.proxy_revalidate:
        reason = "proxy-revalidate"
    elif cc.must_revalidate:
        reason = "must-revalidate"
    else:
        return no("no-permission", splittable)
    ttl = cc.max_age if cc.max_age is not None else 0
    return CacheDecision(True, ttl, cc.proxy_revalidate, splittable, reason)
