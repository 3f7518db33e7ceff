"""[MS-WMLOG] field orders: the W3C summary lines (2.2.1, 2.2.2) and the XML element orders (2.4, 2.8)."""

from __future__ import annotations

# log_data44 (2.2.1): the first 44 fields of every W3C summary line.
LOG_DATA44 = (
    "c-ip", "date", "time", "c-dns", "cs-uri-stem", "c-starttime", "x-duration", "c-rate",
    "c-status", "c-playerid", "c-playerversion", "c-playerlanguage", "cs-User-Agent", "cs-Referer",
    "c-hostexe", "c-hostexever", "c-os", "c-osversion", "c-cpu", "filelength", "filesize",
    "avgbandwidth", "protocol", "transport", "audiocodec", "videocodec", "c-channelURL", "sc-bytes",
    "c-bytes", "s-pkts-sent", "c-pkts-received", "c-pkts-lost-client", "c-pkts-lost-net",
    "c-pkts-lost-cont-net", "c-resendreqs", "c-pkts-recovered-ECC", "c-pkts-recovered-resent",
    "c-buffercount", "c-totalbuffertime", "c-quality", "s-ip", "s-dns", "s-totalclients", "s-cpu-util",
)
# The optional tail making a 47-field line (legacy SHOULD, streaming MUST).
LOG_DATA47 = LOG_DATA44 + ("cs-url", "cs-media-name", "cs-media-role")
# log_data52 (2.2.2): rendering logs.
LOG_DATA52 = LOG_DATA44 + (
    "cs-user-name", "s-session-id", "s-content-path", "cs-url", "cs-media-name",
    "c-max-bandwidth", "cs-media-role", "s-proxied",
)
SUMMARY_LAYOUTS = {44: LOG_DATA44, 47: LOG_DATA47, 52: LOG_DATA52}

# xml-log (2.4): the per-field elements, in order, after <Summary>. Note there is no element for
# cs-media-name, cs-media-role or s-proxied; those live only in the summary line.
XML_ELEMENTS = LOG_DATA44 + ("cs-url",)

# connect-time-log (2.8): empty <Summary> then these elements, in this order.
CONNECT_ELEMENTS = ("c-dns", "c-ip", "c-os", "c-osversion", "date", "time", "c-cpu", "transport")

ALL_FIELDS = frozenset(LOG_DATA52)
_CANONICAL = {name.lower(): name for name in ALL_FIELDS}


def canonical_field(name: str) -> str | None:
    """Field name in the spec's spelling (``cs-user-agent`` -> ``cs-User-Agent``), or None."""
    return _CANONICAL.get(name.lower())


# Fixed values of a rendering log (2.7.1); the rest is copied from the source log.
RENDERING_FIXED = {
    "avgbandwidth": "-",
    "c-buffercount": "-",
    "c-pkts-lost-client": "-",
    "c-pkts-lost-cont-net": "-",
    "c-pkts-lost-net": "-",
    "c-pkts-received": "-",
    "c-pkts-recovered-ECC": "-",
    "c-pkts-recovered-resent": "-",
    "c-quality": "100",
    "c-resendreqs": "-",
    "c-totalbuffertime": "-",
    "protocol": "Cache",
    "transport": "-",
    # 2.1.35, 2.1.40, 2.1.44, 2.1.46, 2.1.48, 2.1.9: always "-"
    "cs-user-name": "-",
    "s-content-path": "-",
    "s-pkts-sent": "-",
    "s-session-id": "-",
    "sc-bytes": "-",
    "c-max-bandwidth": "-",
}
