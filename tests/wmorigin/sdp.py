"""SDP for Windows Media content ([MS-RTSP] 2.2.5) and a small reader for the player.

Session level: b=AS (peak of all streams, kbit/s, 2.2.5.1.1), b=RS:0/b=RR:0 (2.2.5.1.2-3),
a=maxps (2.2.5.2.2), a=control base URL (2.2.5.2.1), a=type (2.2.5.2.6, only when not empty),
a=pgmpu asfv1 data URL carrying the ASF file header (2.2.5.2.3.1).
Each ASF stream: its own m= line with b=AS, a=rtpmap:96 x-asf-pf/1000 (2.2.5.3), a relative
a=control and a=stream:<ASF stream number> (2.2.5.2.5). Optional x-wms-rtx m= line with
a=control:rtx and a=stream:65536 (2.2.5.5; Windows always names it rtx, note <3>).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from tests.wmorigin.asf import AsfFile

PGMPU_ASF = "pgmpu:data:application/vnd.ms.wms-hdr.asfv1;base64,"


def build_sdp(asf: AsfFile, base_url: str, *, session_id: int, version: int, features: tuple[str, ...] = (),
              rtx: bool = True, title: str = "wmorigin") -> str:
    kbps = {s.number: (s.bitrate + 999) // 1000 for s in asf.streams}
    lines = [
        "v=0",
        f"o=- {session_id} {version} IN IP4 127.0.0.1",
        f"s={title}",
        "c=IN IP4 0.0.0.0",
        f"b=AS:{sum(kbps.values())}",
        "b=RS:0",
        "b=RR:0",
        "t=0 0",
        f"a=maxps:{asf.maxps}",
        f"a=control:{base_url.rstrip('/')}/",
    ]
    if features:
        lines.append("a=type:" + ",".join(features))
    if "broadcast" in features:
        lines.append("a=range:npt=now-")
    else:
        lines.append(f"a=range:npt=0.000-{asf.duration_ms / 1000:.3f}")
    lines.append("a=" + PGMPU_ASF + base64.b64encode(asf.header).decode("ascii"))
    for stream in asf.streams:
        lines += [
            f"m={stream.kind} 0 RTP/AVP 96",
            f"b=AS:{kbps[stream.number]}",
            "b=RS:0",
            "b=RR:0",
            "a=rtpmap:96 x-asf-pf/1000",
            f"a=control:{stream.kind}",
            f"a=stream:{stream.number}",
        ]
    if rtx:
        lines += ["m=application 0 RTP/AVP 97", "a=rtpmap:97 x-wms-rtx/1000", "a=control:rtx",
                  "a=stream:65536"]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class SdpStream:
    kind: str
    control: str
    stream: int
    encoding: str
    payload_type: int


@dataclass
class ParsedSdp:
    control: str = ""
    maxps: int = 0
    types: tuple[str, ...] = ()
    asf_header: bytes = b""
    streams: list[SdpStream] = field(default_factory=list)

    def media_streams(self) -> list[SdpStream]:
        return [s for s in self.streams if s.encoding.lower() == "x-asf-pf"]


def parse_sdp(text: str) -> ParsedSdp:
    """Lenient reader: enough to play x-asf-pf content. Unknown lines are ignored."""
    out = ParsedSdp()
    current: SdpStream | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            current = SdpStream(parts[0], "", 0, "", int(parts[3]) if len(parts) > 3 else -1)
            out.streams.append(current)
        elif line.startswith("a=control:"):
            if current is None:
                out.control = line[10:]
            else:
                current.control = line[10:]
        elif line.startswith("a=maxps:") and current is None:
            out.maxps = int(line[8:])
        elif line.startswith("a=type:") and current is None:
            out.types = tuple(t.strip() for t in line[7:].split(","))
        elif line.startswith("a=" + PGMPU_ASF):
            out.asf_header = base64.b64decode(line[2 + len(PGMPU_ASF):])
        elif line.startswith("a=stream:") and current is not None:
            current.stream = int(line[9:])
        elif line.startswith("a=rtpmap:") and current is not None:
            current.encoding = line.split(None, 1)[1].split("/")[0] if " " in line else ""
    return out


def resolve(base: str, control: str) -> str:
    """Stream URL from a (relative) control attribute, RFC 2326 C.1.1."""
    if "://" in control:
        return control
    return base.rstrip("/") + "/" + control
