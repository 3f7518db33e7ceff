"""Server-side RTSP authentication of players (sans-IO): Basic (RFC 7617) and Digest (RFC 7616:
SHA-256 and MD5, qop=auth, nonces with a sliding expiry, stale=true, nc replay check; the RFC 2069
form without qop that GStreamer and live555 players send is accepted too), as
401 + WWW-Authenticate for content proxyd serves and 407 + Proxy-Authenticate when a player uses it
as a forward proxy ([MS-RTSP] checklist item 66).

Only H(A1) = H(username:realm:password) is known here, per algorithm (PlayerAuthPolicy.users):
Digest needs nothing else, and Basic is checked by hashing the password it carries the same way,
so no password is ever stored or configured. No sockets, no clock reads: `now` is passed in.

    authenticator = PlayerAuthenticator(limits)           # one per node
    verdict = authenticator.check(policy, method=..., uri=..., authorization=header_or_None,
                                  address=peer_ip, now=time.monotonic(), proxy=False)
    if not verdict.ok: answer verdict.status/reason with verdict.headers (log verdict.detail)

Failed attempts are counted per player address in a fixed window; over the limit every request
from it gets 403 without its credentials being looked at. Tables are bounded (oldest dropped).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxyd.rtsp.auth import (
    Challenge,
    digest_hash,
    digest_response_from_ha1,
    parse_challenges,
    quote,
)
from proxyd.rtsp.uri import url_key

MODES = ("open", "basic", "digest")
# Offered in this order (RFC 7616 section 3.7: preferred first); a client that knows only MD5 (ffmpeg,
# GStreamer) answers the MD5 one.
ALGORITHMS = ("SHA-256", "MD5")
HA1_HEX_LENGTHS = {"MD5": 32, "SHA-256": 64}
_NO_USER = {"SHA-256": ""}
NC_WINDOW = 64  # nonce-counts this far below the highest seen are still accepted once (pipelining)


class PolicyError(ValueError):
    """A credentials file or snapshot row cannot make a policy."""


@dataclass(frozen=True)
class PlayerAuthPolicy:
    """Who may play content under one route/origin: `mode` basic or digest, the realm the stored
    hashes were made for, and per username the H(A1) hex per algorithm ("MD5", "SHA-256")."""

    mode: str
    realm: str
    users: Mapping[str, Mapping[str, str]]

    def __repr__(self) -> str:  # never the hashes (password equivalents for this realm)
        return f"PlayerAuthPolicy(mode={self.mode!r}, realm={self.realm!r}, users={len(self.users)})"

    def __hash__(self) -> int:
        return hash((self.mode, self.realm, tuple(sorted(self.users))))

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms some user has a hash for, in offer order."""
        return tuple(a for a in ALGORITHMS if any(a in hashes for hashes in self.users.values()))


def make_policy(mode: str, realm: str, users: Mapping[str, Mapping[str, str]]) -> PlayerAuthPolicy | None:
    """A validated policy (None for "open"); PolicyError names the problem."""
    if mode not in MODES:
        raise PolicyError(f"player auth mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "open":
        return None
    if not realm or '"' in realm or any(ord(c) < 0x20 for c in realm):
        raise PolicyError("player auth needs a realm without quotes or control characters")
    if not users:
        raise PolicyError("player auth needs at least one user")
    clean: dict[str, dict[str, str]] = {}
    for username, hashes in users.items():
        if not username or ":" in username or any(ord(c) < 0x20 for c in username):
            raise PolicyError(f"bad player username {username[:64]!r}")
        entry = {}
        for algorithm, ha1 in hashes.items():
            ha1 = ha1.strip().lower()
            if not ha1:
                continue
            if HA1_HEX_LENGTHS.get(algorithm) != len(ha1) or any(c not in "0123456789abcdef" for c in ha1):
                raise PolicyError(f"user {username!r}: not an {algorithm} H(A1) hex digest")
            entry[algorithm] = ha1
        if not entry:
            raise PolicyError(f"user {username!r} has no hash")
        clean[username] = entry
    return PlayerAuthPolicy(mode, realm, clean)


def parse_htdigest(text: str, mode: str = "digest") -> PlayerAuthPolicy | None:
    """`user:realm:H(A1)` lines (Apache htdigest; an H(A1) of 64 hex digits is SHA-256, 32 MD5; a
    user may have one line per algorithm). One realm per file; '#' lines and blank lines skipped."""
    users: dict[str, dict[str, str]] = {}
    realms: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            raise PolicyError(f"line {number}: expected user:realm:hash")
        username, realm, ha1 = parts
        algorithm = {32: "MD5", 64: "SHA-256"}.get(len(ha1.strip()))
        if algorithm is None:
            raise PolicyError(f"line {number}: the hash is neither MD5 (32 hex) nor SHA-256 (64 hex)")
        realms.add(realm)
        users.setdefault(username, {})[algorithm] = ha1
    if len(realms) > 1:
        raise PolicyError(f"one realm per file, found {len(realms)}")
    return make_policy(mode, realms.pop() if realms else "", users)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    status: int = 200
    reason: str = "OK"
    headers: tuple[tuple[str, str], ...] = ()
    detail: str = ""  # for the one log line of a rejection: never a password or a hash
    username: str = ""


class _Nonce:
    __slots__ = ("last_used", "highest_nc", "seen")

    def __init__(self, now: float) -> None:
        self.last_used = now
        self.highest_nc = 0
        self.seen = 0  # bit i: highest_nc - i was used

    def use(self, nc: int) -> bool:
        """False for a nonce-count already used (or too far below the highest to tell)."""
        if nc > self.highest_nc:
            shift = nc - self.highest_nc
            self.seen = ((self.seen << shift) | 1) & ((1 << NC_WINDOW) - 1) if shift < NC_WINDOW else 1
            self.highest_nc = nc
            return True
        offset = self.highest_nc - nc
        if offset >= NC_WINDOW or self.seen >> offset & 1:
            return False
        self.seen |= 1 << offset
        return True


class _Failures:
    __slots__ = ("window_start", "count")

    def __init__(self, window_start: float) -> None:
        self.window_start = window_start
        self.count = 0


def default_nonce() -> str:
    return secrets.token_urlsafe(24)


class PlayerAuthenticator:
    """The node's nonces and failure counters; `check` decides one request."""

    def __init__(self, *, max_failures: int, failure_window: float, nonce_lifetime: float, max_nonces: int,
                 max_addresses: int, nonce_source: Callable[[], str] = default_nonce) -> None:
        self.max_failures = max_failures
        self.failure_window = failure_window
        self.nonce_lifetime = nonce_lifetime
        self.max_nonces = max_nonces
        self.max_addresses = max_addresses
        self._new_nonce = nonce_source
        self.nonces: OrderedDict[str, _Nonce] = OrderedDict()  # least recently used first
        self.failures: OrderedDict[str, _Failures] = OrderedDict()

    # --- the decision ---------------------------------------------------------------------------
    def check(self, policy: PlayerAuthPolicy, *, method: str, uri: str, authorization: str | None,
              address: str, now: float, proxy: bool = False) -> Verdict:
        if self._throttled(address, now):
            return Verdict(False, 403, "Forbidden",
                           detail=f"player auth: over --auth-max-failures from {address}, not checked")
        if not authorization:
            return self._challenge(policy, now, proxy, "player auth: credentials required")
        offered = [c for c in parse_challenges(authorization) if c.scheme == policy.mode]
        if not offered:
            return self._challenge(policy, now, proxy, "player auth: credentials of another scheme")
        if policy.mode == "basic":
            return self._basic(policy, offered[0], address, now, proxy)
        return self._digest(policy, offered[0], method, uri, address, now, proxy)

    def _basic(self, policy: PlayerAuthPolicy, creds: Challenge, address: str, now: float,
               proxy: bool) -> Verdict:
        try:
            decoded = base64.b64decode(creds.token68 or "", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return self._failed(policy, address, now, proxy, "", "malformed Basic credentials")
        username, colon, password = decoded.partition(":")
        hashes = policy.users.get(username) or _NO_USER
        algorithm = next(a for a in ALGORITHMS if a in hashes)
        # hashed for an unknown user too: the answer's timing does not tell which usernames exist
        candidate = digest_hash(algorithm, f"{username}:{policy.realm}:{password}".encode())
        if not colon or hashes is _NO_USER:
            return self._failed(policy, address, now, proxy, username, "unknown user")
        if not hmac.compare_digest(candidate, hashes[algorithm]):
            return self._failed(policy, address, now, proxy, username, "wrong password")
        return Verdict(True, username=username)

    def _digest(self, policy: PlayerAuthPolicy, creds: Challenge, method: str, uri: str, address: str,
                now: float, proxy: bool) -> Verdict:
        p = creds.params
        username = _digest_username(p)
        algorithm = (p.get("algorithm") or "MD5").strip().upper()
        # RFC 2069 answers (no qop: GStreamer's rtspsrc, live555 players such as VLC) carry no nc to
        # check; their nonce still expires.
        qop = (p.get("qop") or "").strip().lower() or None
        required = ("nonce", "uri", "response") + (("nc", "cnonce") if qop else ())
        if username is None or any(not p.get(name) for name in required) or qop not in (None, "auth"):
            return self._failed(policy, address, now, proxy, username or "",
                                "malformed Digest credentials", bad_request=True)
        if p["uri"] != uri and url_key(p["uri"]) != url_key(uri):
            return self._failed(policy, address, now, proxy, username,
                                "Digest uri does not match the request-URI", bad_request=True)
        try:
            nc = int(p["nc"], 16) if qop else 0
        except ValueError:
            return self._failed(policy, address, now, proxy, username, "malformed Digest nc",
                                bad_request=True)
        ha1 = policy.users.get(username, {}).get(algorithm)
        if p.get("realm") != policy.realm or ha1 is None:
            return self._failed(policy, address, now, proxy, username, "unknown user, realm or algorithm")
        expected = digest_response_from_ha1(algorithm=algorithm, ha1=ha1, method=method, uri=p["uri"],
                                            nonce=p["nonce"], qop=qop, nc=p.get("nc", ""),
                                            cnonce=p.get("cnonce", ""))
        if not hmac.compare_digest(expected, p["response"].strip().lower()):
            return self._failed(policy, address, now, proxy, username, "wrong password")
        nonce = self._live_nonce(p["nonce"], now)
        if nonce is None:  # the right password with an old nonce: the client retries with a new one
            return self._challenge(policy, now, proxy, "player auth: stale nonce", stale=True)
        if qop and not nonce.use(nc):
            return self._failed(policy, address, now, proxy, username, f"nonce count {nc} replayed")
        nonce.last_used = now
        return Verdict(True, username=username)

    # --- answers --------------------------------------------------------------------------------
    def _failed(self, policy: PlayerAuthPolicy, address: str, now: float, proxy: bool, username: str,
                why: str, bad_request: bool = False) -> Verdict:
        entry = self._failure_entry(address, now)
        entry.count += 1
        detail = f"player auth failed for user {username[:64]!r}: {why}"
        if entry.count == self.max_failures:
            detail += (f" (--auth-max-failures reached: {address} refused for the rest of "
                       f"{self.failure_window:g} s)")
        if bad_request:
            return Verdict(False, 400, "Bad Request", detail=detail)
        return self._challenge(policy, now, proxy, detail)

    def _challenge(self, policy: PlayerAuthPolicy, now: float, proxy: bool, detail: str,
                   stale: bool = False) -> Verdict:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        realm = quote(policy.realm)
        if policy.mode == "basic":
            values = [f'Basic realm={realm}, charset="UTF-8"']
        else:
            nonce = self._issue_nonce(now)
            extra = ", stale=true" if stale else ""
            values = [f'Digest realm={realm}, qop="auth", algorithm={algorithm}, nonce="{nonce}"{extra}'
                      for algorithm in policy.algorithms]
        status, reason = (407, "Proxy Authentication Required") if proxy else (401, "Unauthorized")
        return Verdict(False, status, reason, tuple((name, v) for v in values), detail)

    # --- bounded state --------------------------------------------------------------------------
    def _issue_nonce(self, now: float) -> str:
        self._expire_nonces(now)
        nonce = self._new_nonce()
        self.nonces[nonce] = _Nonce(now)
        while len(self.nonces) > self.max_nonces:
            self.nonces.popitem(last=False)
        return nonce

    def _live_nonce(self, value: str, now: float) -> _Nonce | None:
        self._expire_nonces(now)
        nonce = self.nonces.get(value)
        if nonce is not None:
            self.nonces.move_to_end(value)
        return nonce

    def _expire_nonces(self, now: float) -> None:
        while self.nonces:
            oldest = next(iter(self.nonces.values()))
            if now - oldest.last_used < self.nonce_lifetime:
                return
            self.nonces.popitem(last=False)

    def _failure_entry(self, address: str, now: float) -> _Failures:
        entry = self.failures.get(address)
        if entry is None or now - entry.window_start >= self.failure_window:
            entry = _Failures(now)
            self.failures[address] = entry
            self.failures.move_to_end(address)
            while len(self.failures) > self.max_addresses:
                self.failures.popitem(last=False)
        return entry

    def _throttled(self, address: str, now: float) -> bool:
        entry = self.failures.get(address)
        return entry is not None and now - entry.window_start < self.failure_window \
            and entry.count >= self.max_failures


def _digest_username(params: Mapping[str, str]) -> str | None:
    if "username" in params:
        return params["username"]
    extended = params.get("username*", "")  # RFC 7616 section 3.4.4: UTF-8''percent-encoded
    charset, quote_mark, value = extended.partition("''")
    if quote_mark and charset.strip().upper() == "UTF-8":
        try:
            return urllib.parse.unquote(value, errors="strict")
        except UnicodeDecodeError:
            return None
    return None
