"""The test origin's authentication ([MS-RTSP] 2.2.6.1 WWW-Authenticate; RFC 2326 uses HTTP's):
Basic (RFC 7617) or Digest (RFC 2617, MD5, qop=auth), written from the RFCs here rather than with
proxyd's client (proxyd.rtsp.auth) so a test can tell whether proxyd answers a challenge correctly.

    origin.require_auth("user", "secret", scheme="Digest")   # every request needs credentials
    origin.require_auth("user", "secret", kinds=("SendEvent",))  # only SendEvent does
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field

REALM = "WMOrigin"
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_params(value: str) -> dict[str, str]:
    params = {}
    for name, raw in _PARAM.findall(value):
        params[name.lower()] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
    return params


@dataclass
class RequiredAuth:
    username: str
    password: str
    scheme: str = "Basic"  # Basic | Digest
    kinds: tuple[str, ...] = ()  # request kinds that need credentials (empty: every request)
    nonces: set[str] = field(default_factory=set)

    def applies(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    def challenge(self) -> str:
        if self.scheme == "Basic":
            return f'Basic realm="{REALM}"'
        nonce = secrets.token_hex(16)
        self.nonces.add(nonce)
        return f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'

    def authorized(self, method: str, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != self.scheme.lower():
            return False
        if self.scheme == "Basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return value.strip() == expected
        p = digest_params(value)
        if p.get("username") != self.username or p.get("realm") != REALM or p.get("nonce") not in self.nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{p.get('uri', '')}")
        if p.get("qop") == "auth":
            expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{p['nonce']}:{ha2}")
        return p.get("response") == expected
