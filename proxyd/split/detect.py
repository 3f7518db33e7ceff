"""Is a presentation a live broadcast, and may one origin session be shared by many players?

Pure: inputs are the origin's DESCRIBE answer and the operator's policy; no sockets, no clock.
Broadcast signs ([MS-RTSP] 2.2.6.2.12, 2.2.5.2.6.1; RFC 2326 C.1.5): `x-wms-stream-type=broadcast`,
`a=type:broadcast`, `a=range:npt=now-`, no duration; or an operator `--live PREFIX`. Splitting is
allowed by `x-wms-proxy-split` (2.2.6.2.11), by the operator (`--live`, `--split always`), never
behind an authentication challenge, never for `private` content (2.2.6.2.6).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from proxyd.rtp.errors import SdpError
from proxyd.rtp.sdp import Sdp, parse_sdp
from proxyd.wm.cache_control import (CacheControl, SplitPolicy, decide_cacheability, format_cache_control,
                                     parse_cache_control)


@dataclass(frozen=True)
class SplitDecision:
    split: bool
    live: bool
    reason: str  # stable identifier for logs and tests


def path_under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it on a segment boundary ("/live" covers "/live/cam", not "/lively")."""
    prefix = "/" + prefix.strip("/")
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "?")


def operator_live(path: str, live_prefixes: tuple[str, ...]) -> bool:
    return any(path_under(path, p) for p in live_prefixes)


def sdp_is_live(sdp: Sdp) -> bool:
    """a=type:broadcast, an npt range starting "now" or open-ended, or no duration at all."""
    return sdp.is_live or not sdp.has_duration


def decide_split(status: int, cache_control: str | None, sdp_body: bytes, *, operator_says_live: bool,
                 policy: SplitPolicy = "auto") -> SplitDecision:
    """Split decision for one origin DESCRIBE answer (status, Cache-Control value, SDP body)."""
    if policy == "never":
        return SplitDecision(False, operator_says_live, "policy-never")
    if status in (401, 407):
        return SplitDecision(False, operator_says_live, "auth-challenged")
    if not 200 <= status < 300:
        return SplitDecision(False, operator_says_live, "origin-error")
    try:
        sdp = parse_sdp(sdp_body)
    except SdpError:
        return SplitDecision(False, operator_says_live, "no-sdp")
    if not sdp.media:
        return SplitDecision(False, operator_says_live, "no-media")
    cc = parse_cache_control(cache_control) if cache_control else None
    live = operator_says_live or (cc is not None and cc.is_broadcast) or sdp_is_live(sdp)
    if not live:
        return SplitDecision(False, False, "on-demand")
    # The operator's --live is their permission to split; else the origin's x-wms-proxy-split.
    effective = "always" if operator_says_live and policy == "auto" else policy
    decision = decide_cacheability(cc, policy="never", forced_ttl=0, auth_challenged=False, live=True,
                                   split_policy=effective)
    if not decision.splittable:
        return SplitDecision(False, True, "private" if cc is not None and cc.private else "not-permitted")
    return SplitDecision(True, True, "operator-live" if operator_says_live else
                         ("proxy-split" if cc is not None and cc.proxy_split else "policy-always"))


def permission_lifetime(decision: SplitDecision, cache_control: str | None) -> int | None:
    """Seconds the origin's permission to split lasts: its max-age ([MS-WMSP] 4.12.1.2, revalidated
    with GetContentInfo before a new player joins after it). None: no expiry (the operator's own
    permission, or an origin that gave no max-age)."""
    if decision.reason != "proxy-split" or not cache_control:
        return None
    return parse_cache_control(cache_control).max_age


def granted_to_peer(cache_control: str | None) -> str:
    """The Cache-Control a node splitting a URL answers a cluster peer with (the owner judges what is
    live): broadcast, not to be cached, and the peer may split it ([MS-RTSP] 2.2.6.2.12, 2.2.6.2.3,
    2.2.6.2.11); the origin's other directives (max-age, private...) kept."""
    cc = parse_cache_control(cache_control) if cache_control else CacheControl()
    types = cc.stream_types if cc.is_broadcast else (*cc.stream_types, "broadcast")
    return format_cache_control(replace(cc, no_cache=True, proxy_split=True, stream_types=types))
