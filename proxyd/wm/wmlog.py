"""Lenient [MS-WMLOG] parser for LogPlay / LogConnect / SendEvent (@.REMOTE_LOG) bodies.

Accepted forms: the XML envelope (2.4, 2.8), a bare W3C summary line (2.2), and the web-server form
(``MX_STATS_LogLine:`` prefix, 2.3). Real and sample logs are often malformed, so a tolerant tag
scanner is used instead of an XML parser. It recovers values from, among others:
- wrong closing tags written as openers (``<c-playerid>{..}<c-playerid>``, WMLOG 2.4 ABNF typo);
- an opener whose ``>`` became ``:`` (``<time:23:31:24</time>``, MS-RTSP 4.5.2 sample);
- stray text and closers (``</date>22</date>``), an unterminated ``</XML``;
- duplicated tags (``<c-channelURL><c-channelURL>``, WMLOG product note <8>): first occurrence wins;
- values and summary lines wrapped across lines (the spec's own samples break GUIDs and user agents).

The summary line is mapped to field names by position (44, 47 or 52 fields). Per-field elements win
over summary values; when the summary has the wrong number of fields it is aligned from both ends
and only fields that agree with the elements' values anchor the alignment.
``parse_log`` never raises; everything it could not read is listed in ``errors``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from proxyd.wm.wmlog_fields import CONNECT_ELEMENTS, SUMMARY_LAYOUTS, canonical_field

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_TAGS = 4096
WEB_SERVER_PREFIX = "MX_STATS_LogLine:"

_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z_][\w.\-]*)([^<>]*)(>?)")
_WRAPPED_WS = re.compile(r"\s*[\r\n]\s*")


@dataclass(frozen=True)
class ParsedLog:
    log_type: str  # legacy | streaming | rendering | connect | unknown
    fields: dict[str, str]  # MS-WMLOG field name (spec spelling) -> value
    errors: list[str]
    form: str = "xml"  # xml | w3c | empty
    summary_fields: int = 0  # number of values in the W3C summary line (0: none)
    content_description: dict[str, str] = field(default_factory=dict)
    vendor: dict[str, dict[str, str]] = field(default_factory=dict)  # namespace -> name -> value


def _element_value(text: str) -> str:
    # Values never contain whitespace (2.2: spaces become "_"), so a line break inside is a wrap.
    return _WRAPPED_WS.sub("", html.unescape(text)).strip()


class _Scanner:
    def __init__(self, max_tags: int) -> None:
        self.max_tags = max_tags
        self.fields: dict[str, str] = {}
        self.summary: str | None = None
        self.content_description: dict[str, str] = {}
        self.vendor: dict[str, dict[str, str]] = {}
        self.errors: list[str] = []
        self.stack: list[str] = []
        self.pending: str | None = None
        self.pending_text: list[str] = []
        self.last_leaf: str | None = None

    def _text(self) -> str:
        return "".join(self.pending_text)

    def _record(self, name: str, text: str) -> None:
        self.last_leaf = name
        containers = [c.lower() for c in self.stack]
        if name.lower() == "summary" and self.summary is None:
            self.summary = html.unescape(text)
            return
        if name.lower() == "contentdescription":  # text but no entries (the 3.2 sample's "...")
            self.errors.append("<ContentDescription> holds text, not entries")
            return
        value = _element_value(text)
        if "contentdescription" in containers:
            self.content_description.setdefault(name, value)
            return
        # Vendor data (2.4 client-logging-data) sits inside a namespace element other than <XML>;
        # a leaf left open around a field (``<c-dns> <c-ip>..``) does not count as one.
        namespaces = [c for c in self.stack if c.lower() != "xml" and canonical_field(c) is None]
        canon = canonical_field(name)
        if canon is not None and not namespaces:
            self.fields.setdefault(canon, value)
            return
        self.vendor.setdefault(namespaces[-1] if namespaces else "XML", {}).setdefault(name, value)

    def _open(self, name: str, rest: str, closed: bool) -> None:
        inline_value = ""
        if not closed and rest.startswith(":"):
            self.errors.append(f"malformed tag <{name}{rest[:20]}")
            inline_value = rest[1:]
        if closed and rest.rstrip().endswith("/"):
            self._open(name, "", True)
            self._close(name)
            return
        if self.pending is not None:
            text = self._text()
            if name == self.pending:
                if text.strip():  # <x>value<x>: an opener used as the closer (WMLOG 2.4 ABNF typo)
                    self._record(name, text)
                    self.pending, self.pending_text = None, []
                return  # duplicated opener (WMLOG note <8>)
            if text.strip():
                self.errors.append(f"<{self.pending}> not closed")
                self._record(self.pending, text)
            else:
                self.stack.append(self.pending)
        self.pending, self.pending_text = name, [inline_value]

    def _close(self, name: str) -> None:
        if self.pending is not None:
            pending, text = self.pending, self._text()
            self.pending, self.pending_text = None, []
            if pending == name:
                self._record(name, text)
                return
            if text.strip():
                self.errors.append(f"<{pending}> closed by </{name}>")
                self._record(pending, text)
        lowered = [c.lower() for c in self.stack]
        if name.lower() in lowered:
            del self.stack[len(lowered) - 1 - lowered[::-1].index(name.lower()):]
        elif name != self.last_leaf:
            self.errors.append(f"stray </{name}>")

    def scan(self, text: str) -> None:
        pos = 0
        for count, match in enumerate(_TAG.finditer(text)):
            if count >= self.max_tags:
                self.errors.append(f"more than {self.max_tags} tags; the rest ignored")
                return
            self._chars(text[pos:match.start()])
            pos = match.end()
            slash, name, rest, gt = match.groups()
            if slash:
                self._close(name)
            else:
                self._open(name, rest, bool(gt))
        self._chars(text[pos:])
        if self.pending is not None and self._text().strip():
            self.errors.append(f"<{self.pending}> not closed")
            self._record(self.pending, self._text())

    def _chars(self, chunk: str) -> None:
        if self.pending is not None:
            self.pending_text.append(chunk)
        elif chunk.strip():
            self.errors.append(f"stray text {chunk.strip()[:20]!r}")


def summary_tokens(summary: str) -> list[str]:
    """Split a W3C line on spaces, re-joining values that a line wrap cut in two.

    A break is treated as a wrap (not a separator) inside an unclosed ``{GUID}`` or before a value
    continuing with ``_`` (spaces inside values are ``_``, 2.2), except before a ``_via_`` agent.
    """
    tokens: list[str] = []
    for line in summary.splitlines():
        parts = line.split()
        if not parts:
            continue
        if tokens:
            prev, nxt = tokens[-1], parts[0]
            wrapped = prev.count("{") > prev.count("}") or prev.endswith("_")
            wrapped = wrapped or (nxt.startswith("_") and not nxt.startswith("_via_"))
            if wrapped:
                tokens[-1] = prev + parts.pop(0)
        tokens.extend(parts)
    return tokens


def _layout_for(count: int) -> tuple[str, ...]:
    if count in SUMMARY_LAYOUTS:
        return SUMMARY_LAYOUTS[count]
    return SUMMARY_LAYOUTS[52 if count > 49 else 47 if count > 45 else 44]


def map_summary(tokens: list[str], known: dict[str, str], errors: list[str]) -> dict[str, str]:
    """Field values by position. With a wrong count, align from both ends, anchored by ``known``."""
    layout = _layout_for(len(tokens))
    if len(tokens) == len(layout):
        return dict(zip(layout, tokens, strict=True))
    errors.append(f"summary has {len(tokens)} fields, expected 44, 47 or 52")
    mapped: dict[str, str] = {}
    for name, token in zip(layout, tokens, strict=False):  # from the start
        if name in known and known[name] != token:
            break
        mapped[name] = token
    if not known:
        return mapped  # nothing to anchor the tail: keep the head only
    for name, token in zip(reversed(layout), reversed(tokens), strict=False):  # from the end
        if name in known and known[name] != token:
            break
        if mapped.get(name, token) != token:
            del mapped[name]  # the two alignments disagree: trust neither
            continue
        mapped[name] = token
    return mapped


def _log_type(fields: dict[str, str], summary_count: int, summary_empty: bool, hint: str | None) -> str:
    if not fields:
        return "unknown"
    if summary_count == 52 or "s-proxied" in fields or fields.get("protocol", "").lower() == "cache":
        return "rendering"
    if summary_count == 0 and (summary_empty or hint == "logconnect"):
        if set(fields) <= set(CONNECT_ELEMENTS):
            return "connect"
    if not {"cs-uri-stem", "cs-url", "c-playerid"} & fields.keys():
        return "unknown"  # too little to tell what was played
    if summary_count == 44:
        return "legacy"  # a streaming log MUST carry the 47-field line (2.6.1)
    # A streaming log has no codecs (2.6.1); a legacy log names them (2.5.1).
    if fields.get("audiocodec", "-") == "-" and fields.get("videocodec", "-") == "-":
        return "streaming"
    return "legacy"


def parse_log(
    body: bytes | str,
    *,
    hint: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_tags: int = DEFAULT_MAX_TAGS,
) -> ParsedLog:
    """Parse any MS-WMLOG body. ``hint``: ``logplay`` / ``logconnect`` / ``sendevent`` (request kind)."""
    errors: list[str] = []
    if isinstance(body, bytes):
        if len(body) > max_bytes:
            errors.append(f"body longer than {max_bytes} bytes; truncated")
            body = body[:max_bytes]
        text = body.decode("utf-8", "replace")
    else:
        text = body[:max_bytes]
    text = text.lstrip("\ufeff").strip()
    if not text:
        return ParsedLog("unknown", {}, errors + ["empty body"], form="empty")
    if text.startswith(WEB_SERVER_PREFIX):
        text = text[len(WEB_SERVER_PREFIX):].strip()
    if "<" not in text:
        tokens = summary_tokens(text)
        fields = map_summary(tokens, {}, errors)
        kind = _log_type(fields, len(tokens), False, hint)
        return ParsedLog(kind, fields, errors, form="w3c", summary_fields=len(tokens))
    scanner = _Scanner(max_tags)
    scanner.scan(text)
    errors.extend(scanner.errors)
    fields = dict(scanner.fields)
    summary = scanner.summary
    count = 0
    if summary is not None and summary.strip():
        tokens = summary_tokens(summary)
        count = len(tokens)
        for name, value in map_summary(tokens, scanner.fields, errors).items():
            fields.setdefault(name, value)
    elif summary is None:
        errors.append("no <Summary> element")
    kind = _log_type(fields, count, summary is not None and not summary.strip(), hint)
    return ParsedLog(
        kind,
        fields,
        errors,
        form="xml",
        summary_fields=count,
        content_description=scanner.content_description,
        vendor=scanner.vendor,
    )
