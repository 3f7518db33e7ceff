"""The RTCP a cache replay sends its player: sender reports, and SR + BYE at the end of the media."""

from __future__ import annotations

import time

from proxyd.cache.replay_out import ReplayStream
from proxyd.rtp.packet import build_bye, build_sr

NTP_EPOCH_OFFSET = 2208988800


def sender_report(out: ReplayStream, media_us: int) -> bytes:
    """SR mapping the wall clock (NTP) to this stream's RTP time at media time `media_us`; the
    same clock for every stream lets players synchronise audio and video."""
    wall = time.time() + NTP_EPOCH_OFFSET
    seconds = int(wall)
    fraction = int((wall - seconds) * (1 << 32)) & 0xFFFFFFFF
    return build_sr(out.ssrc, seconds, fraction, out.rtp_time(media_us), out.relay.counters.packets_out,
                    out.octets & 0xFFFFFFFF)


def goodbye(out: ReplayStream, media_us: int) -> bytes:
    """SR + BYE compound: RTCP compounds start with a report, and a lone 8-byte BYE is below some
    players' minimum packet size (ffmpeg drops RTCP shorter than 12 bytes)."""
    return sender_report(out, media_us) + build_bye((out.ssrc,))
