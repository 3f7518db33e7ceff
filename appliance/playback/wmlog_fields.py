"""[MS-WMLOG] field table: wire name -> PlayLog column, Django field and lenient parser.

Values the spec allows to be "-" (unknown) become NULL for numbers/addresses and "" for text.
Anything unparsable is stored as unknown rather than rejected: logs come from players.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

MAX_BIG = 2**63 - 1


def parse_int(value: str) -> int | None:
    value = value.strip()
    if not value or value == "-":
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if -MAX_BIG <= number <= MAX_BIG else None


def parse_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def parse_bool01(value: str) -> bool | None:
    return {"0": False, "1": True}.get(value.strip())


def parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_time(value: str) -> dt.time | None:
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError:
        return None


def text(max_length: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()
        return "" if value == "-" else value[:max_length]
    return parse


@dataclass(frozen=True)
class WmlogField:
    wire: str
    column: str
    parse: Callable[[str], object]
    make: Callable[[], models.Field]


def _int(wire: str, column: str) -> WmlogField:
    return WmlogField(wire, column, parse_int, lambda: models.BigIntegerField(null=True, blank=True))


def _text(wire: str, column: str, max_length: int = 255) -> WmlogField:
    if max_length > 2000:
        return WmlogField(wire, column, text(max_length), lambda: models.TextField(blank=True))
    return WmlogField(wire, column, text(max_length),
                      lambda: models.CharField(max_length=max_length, blank=True))


WMLOG_FIELDS: tuple[WmlogField, ...] = (
    WmlogField("c-ip", "c_ip", parse_ip, lambda: models.GenericIPAddressField(null=True, blank=True)),
    WmlogField("date", "log_date", parse_date, lambda: models.DateField(null=True, blank=True)),
    WmlogField("time", "log_time", parse_time, lambda: models.TimeField(null=True, blank=True)),
    _text("c-dns", "c_dns"),
    _text("cs-uri-stem", "cs_uri_stem", 2000),
    _int("c-starttime", "c_starttime"),
    _int("x-duration", "x_duration"),
    _int("c-rate", "c_rate"),
    _int("c-status", "c_status"),
    _text("c-playerid", "c_playerid", 64),
    _text("c-playerversion", "c_playerversion", 64),
    _text("c-playerlanguage", "c_playerlanguage", 35),
    _text("cs-User-Agent", "cs_user_agent", 512),
    _text("cs-Referer", "cs_referer", 2000),
    _text("c-hostexe", "c_hostexe", 255),
    _text("c-hostexever", "c_hostexever", 64),
    _text("c-os", "c_os", 64),
    _text("c-osversion", "c_osversion", 64),
    _text("c-cpu", "c_cpu", 64),
    _int("filelength", "filelength"),
    _int("filesize", "filesize"),
    _int("avgbandwidth", "avgbandwidth"),
    _text("protocol", "protocol", 16),
    _text("transport", "transport", 16),
    _text("audiocodec", "audiocodec", 256),
    _text("videocodec", "videocodec", 256),
    _text("c-channelURL", "c_channel_url", 2000),
    _int("sc-bytes", "sc_bytes"),
    _int("c-bytes", "c_bytes"),
    _int("s-pkts-sent", "s_pkts_sent"),
    _int("c-pkts-received", "c_pkts_received"),
    _int("c-pkts-lost-client", "c_pkts_lost_client"),
    _int("c-pkts-lost-net", "c_pkts_lost_net"),
    _int("c-pkts-lost-cont-net", "c_pkts_lost_cont_net"),
    _int("c-resendreqs", "c_resendreqs"),
    _int("c-pkts-recovered-ECC", "c_pkts_recovered_ecc"),
    _int("c-pkts-recovered-resent", "c_pkts_recovered_resent"),
    _int("c-buffercount", "c_buffercount"),
    _int("c-totalbuffertime", "c_totalbuffertime"),
    _int("c-quality", "c_quality"),
    WmlogField("s-ip", "s_ip", parse_ip, lambda: models.GenericIPAddressField(null=True, blank=True)),
    _text("s-dns", "s_dns"),
    _int("s-totalclients", "s_totalclients"),
    _int("s-cpu-util", "s_cpu_util"),
    _text("cs-url", "cs_url", 2000),
    _text("cs-media-name", "cs_media_name", 2000),
    _text("cs-media-role", "cs_media_role", 255),
    _text("cs-user-name", "cs_user_name", 255),
    _text("s-session-id", "s_session_id", 64),
    _text("s-content-path", "s_content_path", 2000),
    _text("c-max-bandwidth", "c_max_bandwidth", 32),
    WmlogField("s-proxied", "s_proxied", parse_bool01, lambda: models.BooleanField(null=True, blank=True)),
)

_BY_WIRE = {field.wire.lower(): field for field in WMLOG_FIELDS}
# Older docs and W3C headers spell some names with parentheses.
_ALIASES = {"cs(user-agent)": "cs-user-agent", "cs(referer)": "cs-referer", "channelurl": "c-channelurl"}


def playlog_wmlog_fields() -> list[tuple[str, models.Field]]:
    return [(field.column, field.make()) for field in WMLOG_FIELDS]


def wmlog_columns(fields: dict) -> dict[str, object]:
    """Typed column values from a proxyd `fields` dict (wire name -> string); unknown names ignored."""
    columns: dict[str, object] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        key = name.strip().lower()
        field = _BY_WIRE.get(_ALIASES.get(key, key))
        if field is not None and field.column not in columns:  # first occurrence wins
            columns[field.column] = field.parse(value)
    return columns
