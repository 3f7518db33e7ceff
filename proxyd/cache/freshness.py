"""Cacheability and freshness: operator policy per origin, the MS-RTSP decision, revalidation verdicts.

Operator policy (per origin; the control-plane snapshot overrides the command line):
`obey` (origin's Cache-Control only), `force_ttl` (a lifetime when the origin sends no
Cache-Control; `--cache-ttl N`), `never` (`--cache-ttl 0`). Live content is never cached: an
operator live prefix, `x-wms-stream-type=broadcast`, or an SDP without a finite npt range (the
GStreamer origin marks even clips `a=type:broadcast`, so that attribute is not used; a clip's
`a=range:npt=now-6` has an end, a live feed's `npt=now-` has none).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyd.rtp.sdp import Sdp
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.events import Response
from proxyd.rtsp.headers import parse_range
from proxyd.wm.cache_control import CacheDecision, CachePolicy, decide_cacheability, parse_cache_control
from proxyd.wm.validators import Validators, content_changed, validators_from_headers


@dataclass(frozen=True)
class OriginPolicy:
    policy: CachePolicy = "obey"
    ttl: int = 0
    stale_if_error: int = 0  # seconds past expiry a stale entry may be served when the origin is down


def policy_from_flags(cache_ttl: int | None, stale_if_error: int) -> OriginPolicy:
    if cache_ttl is None:
        return OriginPolicy("obey", 0, stale_if_error)
    if cache_ttl <= 0:
        return OriginPolicy("never", 0, stale_if_error)
    return OriginPolicy("force_ttl", cache_ttl, stale_if_error)


def sdp_duration(sdp_body: bytes) -> float | None:
    """Length of an on-demand presentation from its npt ranges (the end, also for `now-END`); None
    when no range has a finite end (live)."""
    try:
        sdp = Sdp.parse(sdp_body)
    except (ValueError, RtspError):
        return None
    values = sdp.attributes("range") + [v for m in sdp.media for v in m.attributes("range")]
    ends = []
    for value in values:
        try:
            parsed = parse_range(value)
        except RtspError:
            continue
        if parsed.unit == "npt" and isinstance(parsed.end, float) and parsed.end > 0:
            ends.append(parsed.end)
    return max(ends) if ends else None


def decide(resp: Response, policy: OriginPolicy, *, live_by_operator: bool) -> CacheDecision:
    """MS-RTSP cacheability of an origin DESCRIBE (or GetContentInfo) response under `policy`."""
    values = resp.headers.get_all("Cache-Control")
    cc = parse_cache_control(", ".join(values)) if values else None
    challenged = resp.status in (401, 407)
    live = live_by_operator
    if not challenged and resp.body and resp.status == 200:
        live = live or sdp_duration(resp.body) is None
    return decide_cacheability(cc, policy=policy.policy, forced_ttl=policy.ttl,
                               auth_challenged=challenged, live=live)


def validators_of(resp: Response) -> Validators:
    return validators_from_headers(resp.headers.items())


def stored_validators(body: dict) -> Validators:
    return Validators(body.get("last_modified"), body.get("etag"), body.get("content_size"))


def describe_changed(body: dict, resp: Response) -> bool:
    """Whether a revalidation DESCRIBE shows different content than the stored entry."""
    return content_changed(stored_validators(body), validators_of(resp),
                           body.get("sdp", "").encode("latin-1"), resp.body)
