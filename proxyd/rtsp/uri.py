"""RTSP URL identity: parsing, the one normal form that decides when two URLs name the same
resource, and how SDP stream controls resolve against the DESCRIBE response (RFC 2326 C.1.1).

Every place that compares or keys RTSP URLs (routes, cache entries, stream controls, session and
split registries, reports) goes through `url_key` / `same_resource` / `is_within`. The normal form
is RFC 3986 §6.2.2-6.2.3: lower-case scheme and host, the scheme's default port omitted (554 for
rtsp, 322 for rtsps), an empty path is "/", percent-encoding of unreserved characters decoded and
hex digits upper-cased, dot segments removed, IPv6 literals compressed. Two RTSP-specific rules:
a trailing "/" does not change the resource (servers write Content-Base `rtsp://h/clip/` for
`rtsp://h/clip`), and userinfo never identifies anything (it is a credential).

Pure: no sockets, no clock.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from .errors import HeaderParseError
from .events import Headers

DEFAULT_PORTS = {"rtsp": 554, "rtspu": 554, "rtspt": 554, "rtsps": 322}


@dataclass(frozen=True)
class RtspUrl:
    scheme: str  # lower case
    host: str  # lower case; an IPv6 literal without brackets
    port: int  # the scheme's default when the URL names none
    path: str  # starts with "/" (may include a query); "*" never appears here
    userinfo: str | None = None

    @property
    def authority(self) -> str:
        """host:port as a URL writes it (IPv6 literals in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.authority}"


_URL_RE = re.compile(r"(?P<scheme>rtsp[ust]?)://(?:(?P<userinfo>[^@/]*)@)?(?P<host>\[[^\]]+\]|[^:/?]+)"
                     r"(?::(?P<port>[0-9]{1,5}))?(?P<path>[/?].*)?", re.IGNORECASE)


def split_rtsp_url(url: str) -> RtspUrl:
    """Parse an absolute rtsp/rtspu/rtspt/rtsps URL; HeaderParseError when it is not one."""
    match = _URL_RE.fullmatch(url.strip())
    if match is None:
        raise HeaderParseError(f"not an rtsp URL: {url[:200]!r}")
    scheme = match["scheme"].lower()
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    if not 0 < port <= 65535:
        raise HeaderParseError(f"bad port in {url[:200]!r}")
    path = match["path"] or "/"
    if path.startswith("?"):
        path = "/" + path
    return RtspUrl(scheme, match["host"].strip("[]").lower(), port, path, match["userinfo"])


def is_absolute_url(url: str) -> bool:
    return re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", url) is not None


# ---- identity -------------------------------------------------------------------------------

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# pchar sub-delims and gen-delims allowed in path and query, plus "%" (escapes are fixed below)
_KEEP_RAW = "!$&'()*+,;=:@/?%"


def _normalize_percent(text: str) -> str:
    # Characters a lax server writes unescaped (spaces, UTF-8) become escapes first, so the raw and
    # the escaped spelling meet; then escaped unreserved characters are decoded, the rest upper-cased.
    text = urllib.parse.quote(text, safe=_KEEP_RAW)
    return _PERCENT.sub(lambda m: chr(int(m[1], 16)) if chr(int(m[1], 16)) in _UNRESERVED
                        else "%" + m[1].upper(), text)


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    segments = path.split("/")[1:]
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):  # RFC 3986 §5.2.4: "/a/b/.." is "/a/"
        out.append("")
    return "/" + "/".join(out)


def _normal_host(host: str) -> str:
    if ":" not in host:
        return host
    try:  # RFC 6874 zone ids are written %25 inside the brackets
        return "[" + str(ipaddress.IPv6Address(host.replace("%25", "%"))).replace("%", "%25") + "]"
    except ValueError:
        return f"[{host}]"


def normalize_path(path: str) -> str:
    """A URL's path and query in normal form (percent-encoding, dot segments in the path), trailing
    "/" kept: what route matching compares and forwards."""
    path, question, query = path.partition("?")
    path = _remove_dot_segments(_normalize_percent(path or "/"))
    return f"{path}{question}{_normalize_percent(query)}"


_TRAILING_SLASHES_AND_SPACES = re.compile(r"[\s/]+\Z")


def url_key(url: str) -> str:
    """The normal form of an RTSP URL: equal keys name the same resource. Anything that is not an
    rtsp URL (e.g. "*") is returned stripped, without a trailing "/", so it still compares."""
    try:
        parts = split_rtsp_url(url)
    except HeaderParseError:
        text = url.strip()
        # "/" and spaces both go from the end (a trailing "/" may hide a space): a fixed point
        return _TRAILING_SLASHES_AND_SPACES.sub("", text) or text
    path, _, _fragment = parts.path.partition("#")  # never sent to a server
    path, question, query = normalize_path(path).partition("?")
    path = path.rstrip("/") or "/"
    query = query.rstrip("/")
    port = "" if parts.port == DEFAULT_PORTS[parts.scheme] else f":{parts.port}"
    return f"{parts.scheme}://{_normal_host(parts.host)}{port}{path}{question}{query}"


_WITHOUT_PATH = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


def url_prefix_key(prefix: str) -> str:
    """A URL prefix (purge by prefix) in normal form that keeps its meaning as a string prefix of
    url_key()s: a trailing "/" stays, and a prefix without a path gains none."""
    text = prefix.strip()
    key = url_key(text)
    if _WITHOUT_PATH.fullmatch(text):
        return key.rstrip("/")
    return key + "/" if text.endswith("/") and not key.endswith("/") else key


def same_resource(a: str, b: str) -> bool:
    return url_key(a) == url_key(b)


def is_within(url: str, presentation: str) -> bool:
    """`url` names `presentation` or something below it (one of its stream controls)."""
    return key_is_within(url_key(url), url_key(presentation))


def key_is_within(mine: str, theirs: str) -> bool:
    """is_within() on url_key()s already computed."""
    if mine == theirs:
        return True
    if theirs.endswith("/"):  # the server root
        return mine.startswith(theirs)
    if mine.startswith(theirs + "/"):
        return True
    # A base with a query: relative controls are resolved below its path (join_control_url)
    path_only, question, _query = theirs.partition("?")
    return bool(question) and mine.startswith(path_only + "/")


# ---- stream controls (RFC 2326 C.1.1) --------------------------------------------------------


def join_control_url(base: str, control: str) -> str:
    """Resolve an SDP a=control value against the base URL (RFC 2326 C.1.1).

    "*" means the base itself. A relative control is appended below the base, adding "/" when the
    base lacks one: that is what GStreamer, live555 and Windows Media servers all expect, while a
    strict RFC 1808 merge would drop the base's last segment (rtsp://h/clip.wmv + audio).
    """
    control = control.strip()
    if not control or control == "*":
        return base
    if is_absolute_url(control):
        return keep_tls(control, base)
    if control.startswith("/"):
        # below the base's scheme and authority, whatever the scheme: an origin's SDP may name its
        # presentation with another one (the SETUP of the result then fails at the origin)
        if not is_absolute_url(base):
            raise HeaderParseError(f"not an absolute URL: {base[:200]!r}")
        scheme, rest = base.split("://", 1)
        authority = rest.split("/", 1)[0].split("?", 1)[0]
        return f"{scheme}://{authority}{control}"
    base = base.split("?", 1)[0]
    return base + control if base.endswith("/") else f"{base}/{control}"


def content_base(headers: Headers, request_url: str) -> str:
    """Base URL for a DESCRIBE response's relative control URLs: Content-Base, then
    Content-Location, then the request URL (RFC 2326 C.1.1). A relative header value is resolved
    against the request URL (RFC 3986 §5.2)."""
    for name in ("Content-Base", "Content-Location"):
        value = headers.get(name)
        if value and value.strip():
            value = value.strip()
            if is_absolute_url(value):
                return keep_tls(value, request_url)
            return urllib.parse.urljoin(request_url, value)
    return request_url


def keep_tls(url: str, reached_as: str) -> str:
    """`url` with the scheme rtsps when it names, as rtsp://, the host and port that were reached
    over TLS as `reached_as` (servers such as gst-rtsp-server write rtsp:// in Content-Base and
    controls whatever connection the request came on): the same resource, on the same connection."""
    if not (url[:7].lower() == "rtsp://" and reached_as[:8].lower() == "rtsps://"):
        return url
    try:
        plain, secure = split_rtsp_url(url), split_rtsp_url(reached_as)
    except HeaderParseError:
        return url
    if (_normal_host(plain.host), plain.port) != (_normal_host(secure.host), secure.port):
        return url
    return "rtsps" + url[4:]
