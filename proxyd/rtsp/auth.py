"""Client-side RTSP authentication (RFC 2326 uses HTTP's): Basic (RFC 7617) and Digest (RFC 2617,
RFC 7616: MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256, qop auth / auth-int, userhash, stale).

Sans-IO: no sockets, no clock; the Digest client nonce comes from an injected source. The hashing
primitives (digest_ha1, digest_response_from_ha1) and the parser also serve the server role
(proxyd.rtsp.player_auth: players authenticating to proxyd).

    auth = ClientAuth(Credentials("user", "secret"))     # one per origin connection
    attempt = auth.attempt("DESCRIBE", url)               # one per request
    while True:
        value = attempt.header()                          # None until the origin challenged
        resp = send(request with Authorization: value if value)
        if not attempt.retry(resp.status, resp.headers.get_all("WWW-Authenticate")):
            break                                         # resp is the answer (maybe a 401)

Parsing is lenient (several challenges in one header or several headers, odd spacing, unquoted
values, quoted strings with commas and escapes, unknown schemes skipped); what is sent is strict
(quoted-string escaping, no control characters, Basic user-ids without ':'). A request is sent at
most three times: without credentials (or with the connection's last challenge), answering a new
challenge, and once more for a Digest `stale=true` nonce (or a changed nonce after a preemptive
answer). Credentials never appear in reprs; Authorization values must not be logged.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


class AuthError(ValueError):
    """The credentials cannot be sent for this challenge (e.g. ':' in a Basic user-id)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(default="", repr=False)

    def __repr__(self) -> str:  # never the password
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic", "digest", ...
    params: Mapping[str, str]  # lower-case names, unquoted values; the first of duplicates wins
    token68: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def stale(self) -> bool:
        return self.params.get("stale", "").strip().lower() == "true"

    @property
    def algorithm(self) -> str:
        return (self.params.get("algorithm") or "MD5").strip().upper()

    @property
    def qops(self) -> tuple[str, ...]:
        value = self.params.get("qop")
        if value is None:
            return ()
        return tuple(q.strip().lower() for q in value.split(",") if q.strip())


# --- parsing (lenient) ---------------------------------------------------------------------------

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68_CHARS = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SPACE = " \t\r\n"


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_space(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in _SPACE:
            self.i += 1

    def token(self, chars: frozenset[str] = _TOKEN_CHARS) -> str:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1
        return self.s[start:self.i]

    def quoted(self) -> str:
        """A quoted-string starting at the opening quote; an unterminated one runs to the end.
        Copies runs between escapes (every player request's Authorization goes through here)."""
        s, end = self.s, len(self.s)
        self.i += 1
        out = []
        while True:
            close = s.find('"', self.i)
            close = end if close < 0 else close
            escape = s.find("\\", self.i, close)
            if escape < 0 or escape + 1 >= end:  # no escape before the end (a trailing one is kept)
                out.append(s[self.i:close])
                self.i = min(close + 1, end)
                return "".join(out)
            out.append(s[self.i:escape])
            out.append(s[escape + 1])
            self.i = escape + 2

    def skip_to_comma(self) -> None:
        while self.i < len(self.s) and self.s[self.i] != ",":
            if self.s[self.i] == '"':
                self.quoted()
            else:
                self.i += 1


def parse_challenges(values: str | Iterable[str]) -> list[Challenge]:
    """Every challenge in WWW-Authenticate value(s), in order (RFC 7235 section 4.1 grammar, leniently)."""
    if isinstance(values, str):
        values = [values]
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_one_header(value))
    return challenges


def _parse_one_header(text: str) -> list[Challenge]:
    sc = _Scanner(text)
    out: list[Challenge] = []
    while True:
        while sc.peek() and (sc.peek() in _SPACE or sc.peek() == ","):
            sc.i += 1
        if sc.at_end():
            return out
        scheme = sc.token()
        if not scheme:  # garbage where a scheme should be
            sc.skip_to_comma()
            continue
        sc.skip_space()
        # "Scheme token68" (a word, maybe '='-padded, then a comma or the end) or "Scheme auth-params"
        mark = sc.i
        word = sc.token(_TOKEN68_CHARS)
        while sc.peek() == "=":
            sc.i += 1
        token_end = sc.i
        sc.skip_space()
        if word and (sc.at_end() or sc.peek() == ","):
            out.append(Challenge(scheme.lower(), {}, sc.s[mark:token_end]))
            continue
        sc.i = mark
        params: dict[str, str] = {}
        _parse_params(sc, params)
        out.append(Challenge(scheme.lower(), params))


def _parse_params(sc: _Scanner, params: dict[str, str]) -> None:
    """auth-params up to the next challenge (a token followed by a space and not by '=') or the end."""
    while True:
        while sc.peek() and (sc.peek() in _SPACE or sc.peek() == ","):
            sc.i += 1
        if sc.at_end():
            return
        start = sc.i
        name = sc.token()
        if not name:  # junk: skip the item
            sc.i += 1
            sc.skip_to_comma()
            continue
        sc.skip_space()
        if sc.peek() != "=":  # the next challenge's scheme
            sc.i = start
            return
        sc.i += 1
        sc.skip_space()
        if sc.peek() == '"':
            value = sc.quoted()
        else:
            begin = sc.i
            while sc.peek() and sc.peek() != "," and sc.peek() not in _SPACE:
                sc.i += 1
            value = sc.s[begin:sc.i]
        params.setdefault(name.lower(), value)
        sc.skip_space()
        if sc.peek() and sc.peek() != ",":  # junk after a value: skip to the next item
            sc.skip_to_comma()


# --- building (strict) ---------------------------------------------------------------------------

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
try:
    hashlib.new("sha512_256", b"")
    _HASHES["SHA-512-256"] = lambda b: hashlib.new("sha512_256", b).hexdigest()
except ValueError:  # OpenSSL without SHA-512/256
    pass
# strongest first: what we pick when an origin offers several Digest challenges
_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")


def supported_algorithm(name: str) -> bool:
    base = name.upper().removesuffix("-SESS")
    return base in _HASHES


def _check_text(what: str, value: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise AuthError(f"{what} contains control characters")


def quote(value: str) -> str:
    """RFC 7230 quoted-string."""
    _check_text("header value", value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def basic_authorization(credentials: Credentials) -> str:
    """`Basic <base64(user-id:password)>` (RFC 7617, UTF-8)."""
    if ":" in credentials.username:
        raise AuthError("a Basic user-id cannot contain ':'")
    _check_text("user-id", credentials.username)
    _check_text("password", credentials.password)
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def digest_hash(algorithm: str, data: bytes) -> str:
    """H(data) for a Digest algorithm name (its -sess variant uses the same hash)."""
    return _HASHES[algorithm.upper().removesuffix("-SESS")](data)


def digest_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(A1) = H(username:realm:password) (RFC 7616 section 3.4.2): what a server stores instead of
    the password."""
    return digest_hash(algorithm, f"{username}:{realm}:{password}".encode())


def digest_response(*, algorithm: str, username: str, realm: str, password: str, method: str, uri: str,
                    nonce: str, qop: str | None = None, nc: str = "", cnonce: str = "",
                    body: bytes = b"") -> str:
    """The request-digest (RFC 7616 section 3.4.1; RFC 2069 form when qop is None)."""
    return digest_response_from_ha1(algorithm=algorithm, ha1=digest_ha1(algorithm, username, realm, password),
                                    method=method, uri=uri, nonce=nonce, qop=qop, nc=nc, cnonce=cnonce,
                                    body=body)


def digest_response_from_ha1(*, algorithm: str, ha1: str, method: str, uri: str, nonce: str,
                             qop: str | None = None, nc: str = "", cnonce: str = "",
                             body: bytes = b"") -> str:
    """The request-digest from a stored H(A1): the client computes it from the password, the server
    (proxyd.rtsp.player_auth) from its stored hash."""
    algorithm = algorithm.upper()
    h = _HASHES[algorithm.removesuffix("-SESS")]
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + h(body)
    ha2 = h(a2.encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


def digest_authorization(challenge: Challenge, credentials: Credentials, *, method: str, uri: str,
                         nc: int = 1, cnonce: str = "", body: bytes = b"") -> str:
    """`Digest ...` answering `challenge` for one request (nc and cnonce used only with a qop)."""
    algorithm = challenge.algorithm
    if not supported_algorithm(algorithm):
        raise AuthError(f"unsupported Digest algorithm {algorithm!r}")
    nonce = challenge.get("nonce")
    if nonce is None:
        raise AuthError("Digest challenge without a nonce")
    qops = challenge.qops
    qop = None
    if qops:
        qop = "auth" if "auth" in qops else ("auth-int" if "auth-int" in qops else None)
        if qop is None:
            raise AuthError(f"no supported qop in {qops}")
        if not cnonce:
            raise AuthError("a qop answer needs a client nonce")
    realm = challenge.realm
    username = credentials.username
    _check_text("user-id", username)
    nc_text = f"{nc:08x}"
    userhash = (challenge.get("userhash") or "").strip().lower() == "true"
    response = digest_response(algorithm=algorithm, username=username, realm=realm,
                               password=credentials.password, method=method, uri=uri, nonce=nonce,
                               qop=qop, nc=nc_text, cnonce=cnonce, body=body)
    if userhash:
        h = _HASHES[algorithm.upper().removesuffix("-SESS")]
        parts = [f"username={quote(h(f'{username}:{realm}'.encode()))}"]
    elif username.isascii():
        parts = [f"username={quote(username)}"]
    else:  # RFC 7616 section 3.4.4
        parts = ["username*=UTF-8''" + urllib.parse.quote(username, safe="")]
    parts += [f"realm={quote(realm)}", f"nonce={quote(nonce)}", f"uri={quote(uri)}"]
    if "algorithm" in challenge.params:
        parts.append(f"algorithm={_token(challenge.params['algorithm'].strip())}")
    parts.append(f"response={quote(response)}")
    if "opaque" in challenge.params:
        parts.append(f"opaque={quote(challenge.params['opaque'])}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    if userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def _token(value: str) -> str:
    if not value or any(c not in _TOKEN_CHARS for c in value):
        raise AuthError(f"not a token: {value!r}")
    return value


def choose(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge to answer: Digest (strongest supported algorithm, usable qop) over Basic."""
    best: Challenge | None = None
    best_rank = -1
    for ch in challenges:
        if ch.scheme == "digest":
            if ch.get("nonce") is None or not supported_algorithm(ch.algorithm):
                continue
            if ch.qops and not {"auth", "auth-int"} & set(ch.qops):
                continue
            base = ch.algorithm.removesuffix("-SESS")
            rank = 10 + len(_PREFERENCE) - _PREFERENCE.index(base)
        elif ch.scheme == "basic":
            rank = 1
        else:
            continue
        if rank > best_rank:
            best, best_rank = ch, rank
    return best


def default_cnonce() -> str:
    return secrets.token_hex(16)


class ClientAuth:
    """The authentication state of one client connection: the challenge answered last (reused for
    later requests, Digest nc counting up) and the credentials to answer with."""

    def __init__(self, credentials: Credentials, *, cnonce: Callable[[], str] = default_cnonce) -> None:
        self.credentials = credentials
        self.challenge: Challenge | None = None
        self.nc = 0
        self._cnonce = cnonce
        self.cnonce = ""

    def __repr__(self) -> str:
        scheme = self.challenge.scheme if self.challenge else None
        return f"ClientAuth({self.credentials!r}, scheme={scheme!r})"

    def accept(self, challenge: Challenge) -> None:
        if self.challenge is None or challenge.get("nonce") != self.challenge.get("nonce"):
            self.nc = 0
            self.cnonce = self._cnonce()
        self.challenge = challenge

    def authorization(self, method: str, uri: str, body: bytes = b"") -> str | None:
        """Authorization for a request under the current challenge (None before the first one)."""
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return basic_authorization(self.credentials)
        self.nc += 1
        return digest_authorization(ch, self.credentials, method=method, uri=uri, nc=self.nc,
                                    cnonce=self.cnonce, body=body)

    def attempt(self, method: str, uri: str, body: bytes = b"") -> AuthAttempt:
        return AuthAttempt(self, method, uri, body)


class AuthAttempt:
    """One request's answers to challenges (see the module docstring for the retry rules).

    After `retry` returned False, `outcome` says why the last answer stands: "" (not a 401),
    "rejected" (our credentials were refused), "unsupported" (no challenge we can answer),
    "unusable" (the credentials cannot be sent for it, see AuthError) or "exhausted"."""

    MAX_SENDS = 3

    def __init__(self, auth: ClientAuth, method: str, uri: str, body: bytes) -> None:
        self.auth = auth
        self.method, self.uri, self.body = method, uri, body
        self.sends = 0
        self.sent_nonce: str | None = None
        self.sent_ours = False
        self.preemptive = False
        self.renonced = False
        self.outcome = ""
        self.error = ""
        self._next: str | None = None
        self._prepared = False

    def header(self) -> str | None:
        """Authorization for the next send of this request (None: send without one)."""
        if not self._prepared:
            try:
                self._next = self.auth.authorization(self.method, self.uri, self.body)
            except AuthError as exc:
                self._next, self.error = None, str(exc)
            self.preemptive = self._next is not None
        value, self._next, self._prepared = self._next, None, False
        self.sends += 1
        self.sent_ours = value is not None
        ch = self.auth.challenge
        self.sent_nonce = ch.get("nonce") if (ch is not None and value is not None) else None
        return value

    def retry(self, status: int, www_authenticate: Iterable[str]) -> bool:
        """True when the request should be sent again (with `header()`)."""
        if status != 401:
            self.outcome = ""
            return False
        challenge = choose(parse_challenges(www_authenticate))
        if challenge is None:
            self.outcome = "unsupported"
            return False
        if self.sends >= self.MAX_SENDS:
            self.outcome = "exhausted"
            return False
        if self.sent_ours:
            new_nonce = challenge.scheme == "digest" and (
                challenge.stale or (self.preemptive and challenge.get("nonce") != self.sent_nonce))
            if not new_nonce or self.renonced:
                self.outcome = "rejected"
                return False
            self.renonced = True
        previous = self.auth.challenge, self.auth.nc, self.auth.cnonce
        self.auth.accept(challenge)
        try:
            self._next = self.auth.authorization(self.method, self.uri, self.body)
        except AuthError as exc:
            self.auth.challenge, self.auth.nc, self.auth.cnonce = previous
            self.outcome, self.error = "unusable", str(exc)
            return False
        self._prepared = True
        return True
