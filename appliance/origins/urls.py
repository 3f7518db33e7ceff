"""The one check of an origin's base URL, for the API serializer and the dashboard form alike: what
proxyd can make a route of (proxyd.config.parse_route), so a row is never silently skipped there."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ORIGIN_SCHEMES = ("rtsp", "rtsps")


def clean_origin_url(value: str) -> str:
    """`value` stripped; ValueError with a message for the operator when proxyd could not route it."""
    url = value.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or an unclosed [ of an IPv6 literal
        raise ValueError("Not a valid URL: check the port and the [ ] around an IPv6 address.") from None
    if parts.scheme.lower() not in ORIGIN_SCHEMES or not parts.hostname:
        raise ValueError("Use an rtsp:// or rtsps:// URL with a host.")
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(parts.hostname.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"[{parts.hostname}] is not an IPv6 address.") from None
    if port == 0:
        raise ValueError("Port 0 cannot be connected to.")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError("The URL takes no user, query or fragment "
                         "(credentials go in username and password).")
    return url
