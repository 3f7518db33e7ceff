"""``Supported`` feature tags ([MS-RTSP] 2.2.6.10) and what the proxy advertises in each role.

Negotiation rules: a listed feature SHOULD be used, a defined feature that is not listed MUST NOT be;
a missing header leaves the known set unchanged and a present one replaces it (3.1.5.2, 3.2.5.1).
"""

from __future__ import annotations

EOSMSG = "com.microsoft.wm.eosmsg"
FASTCACHE = "com.microsoft.wm.fastcache"  # responses only: the client may send Speed
LOCID = "com.microsoft.wm.locid"  # requests only; a pure RTSP-to-RTSP proxy MUST NOT send it
PACKETPAIRSSRC = "com.microsoft.wm.packetpairssrc"
PREDSTRM = "com.microsoft.wm.predstrm"
SRVPPAIR = "com.microsoft.wm.srvppair"
SSWITCH = "com.microsoft.wm.sswitch"
STARTUPPROFILE = "com.microsoft.wm.startupprofile"

KNOWN_FEATURES = (SRVPPAIR, SSWITCH, EOSMSG, FASTCACHE, PACKETPAIRSSRC, PREDSTRM, STARTUPPROFILE, LOCID)
MAX_FEATURES = 8  # "WMCfeat *7[...]"
MAX_PARSED_TOKENS = 64


def parse_supported(value: str | None) -> frozenset[str]:
    """Feature tokens of one header value, lower-cased; separators "," and/or spaces; unknown tokens kept."""
    if not value:
        return frozenset()
    tokens = value.replace(",", " ").split()[:MAX_PARSED_TOKENS]
    return frozenset(t.strip().lower() for t in tokens if t.strip())


def update_features(current: frozenset[str], header_value: str | None) -> frozenset[str]:
    """Apply a received Supported header: absent keeps ``current``, present replaces it (2.2.6.10)."""
    if header_value is None:
        return current
    return parse_supported(header_value)


def format_supported(features) -> str:
    """Strict header value: known tags only, canonical order, at most 8."""
    wanted = {f.lower() for f in features}
    return ", ".join([f for f in KNOWN_FEATURES if f in wanted][:MAX_FEATURES])


def server_role_features(*, honours_speed: bool, packet_pair: bool = False) -> tuple[str, ...]:
    """What the proxy lists towards players: eosmsg and sswitch are mandatory for servers (3.2.5.2).

    ``fastcache`` only if Speed is honoured; players send remote-log SendEvents only after using Speed
    (3.1.4.9), so advertising it is what makes rendering logs reach the proxy.
    """
    features = [EOSMSG, SSWITCH]
    if honours_speed:
        features.append(FASTCACHE)
    if packet_pair:
        features.append(SRVPPAIR)
    return tuple(features)


def client_role_features(*, predictive_selection: bool = False) -> tuple[str, ...]:
    """What the proxy lists towards origins on DESCRIBE/SETUP/PLAY (3.1.5.1); never ``locid``."""
    features = [EOSMSG, SSWITCH]
    if predictive_selection:
        features.append(PREDSTRM)
    return tuple(features)


def may_send_speed(server_features: frozenset[str]) -> bool:
    """A client MUST NOT send Speed unless the server listed fastcache (2.2.6.10.2)."""
    return FASTCACHE in server_features
