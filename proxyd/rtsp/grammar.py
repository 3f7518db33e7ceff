"""Compiled grammar from RFC 2326 §6.1 (Request-Line), §7.1 (Status-Line) and §4.2 (headers).

Lenient on receive: extra spaces/tabs between tokens and around header values.
"""

from __future__ import annotations

import re

# RFC 2326 §15.1 / RFC 2616 §2.2 token
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
TOKEN_RE = re.compile(TOKEN)
TOKEN_STR_RE = re.compile(TOKEN.decode("ascii"))

REQUEST_LINE_RE = re.compile(
    rb"(?P<method>" + TOKEN + rb")[ \t]+(?P<uri>[^ \t\x00-\x1f\x7f]+)[ \t]+(?P<version>[^ \t]+)[ \t]*"
)
STATUS_LINE_RE = re.compile(
    rb"(?P<version>RTSP/[0-9]+\.[0-9]+)[ \t]+(?P<status>[0-9]{3})"
    rb"(?:[ \t]+(?P<reason>[^\x00-\x08\x0a-\x1f\x7f]*))?"
)
VERSION_RE = re.compile(rb"[A-Za-z]+/[0-9]+\.[0-9]+")
RTSP_VERSION = b"RTSP/1.0"

HEADER_FIELD_RE = re.compile(rb"(?P<name>" + TOKEN + rb")[ \t]*:[ \t]*(?P<value>[^\x00\x0d\x0a]*?)[ \t]*")
# a header block ends at an empty line; LF-only and mixed line ends are tolerated
HEADER_END_RE = re.compile(rb"\n\r?\n")
FORBIDDEN_VALUE_RE = re.compile(r"[\x00\r\n]")
URI_SEND_RE = re.compile(r"[^ \t\x00-\x1f\x7f]+")
