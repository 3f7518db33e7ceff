"""Deterministic test clips made with ffmpeg, cached on disk by their spec.

A clip is an MP4 with one H.264 video track (fixed GOP, no B-frames) and one AAC track. The spec's
hash names the file, so a pytest session (or a benchmark run) encodes each clip once. Two specs that
differ only in `variant` give clips with the same shape but different pictures and tone: use them to
simulate "the origin replaced the content at this mount".
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

ENCODE_TIMEOUT_S = 60.0

# Visually and audibly distinct sources per variant; index = variant % len(...).
_VIDEO_SOURCES = ("testsrc", "testsrc2", "smptebars", "rgbtestsrc")
_TONE_HZ = (440, 660, 880, 330)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    duration_s: int = 6
    width: int = 320
    height: int = 240
    fps: int = 25
    gop_frames: int = 25
    h264_profile: str = "baseline"
    audio_rate: int = 44100
    audio_channels: int = 1
    variant: int = 0
    video_kbps: int | None = None  # constant video bitrate (with filler); None: x264's choice

    def cache_key(self) -> str:
        # Unset optional fields are left out, so specs from before they existed keep their key.
        fields = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def video_frames(self) -> int:
        return self.duration_s * self.fps

    @property
    def audio_frames(self) -> int:
        """AAC frames carry 1024 samples; ffmpeg adds one priming frame."""
        return -(-self.duration_s * self.audio_rate // 1024) + 1


@dataclasses.dataclass(frozen=True)
class Clip:
    spec: ClipSpec
    path: Path

    @property
    def video_frames(self) -> int:
        return self.spec.video_frames

    @property
    def audio_frames(self) -> int:
        return self.spec.audio_frames

    @property
    def duration_s(self) -> int:
        return self.spec.duration_s


class MediaToolMissing(RuntimeError):
    """ffmpeg is not installed; callers turn this into a pytest skip."""


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise MediaToolMissing("ffmpeg not found on PATH")
    return path


def encode_command(spec: ClipSpec, out: Path) -> list[str]:
    source = _VIDEO_SOURCES[spec.variant % len(_VIDEO_SOURCES)]
    tone = _TONE_HZ[spec.variant % len(_TONE_HZ)] + 10 * (spec.variant // len(_TONE_HZ))
    video = f"{source}=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.duration_s}"
    audio = f"sine=frequency={tone}:sample_rate={spec.audio_rate}:duration={spec.duration_s}"
    return [
        ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
        "-map", "0:v", "-map", "1:a",
        # Single-threaded, bitexact, no metadata: same spec gives the same bytes.
        "-c:v", "libx264", "-profile:v", spec.h264_profile, "-preset", "ultrafast", "-threads", "1",
        "-g", str(spec.gop_frames), "-keyint_min", str(spec.gop_frames), "-sc_threshold", "0", "-bf", "0",
        "-pix_fmt", "yuv420p", *_constant_bitrate(spec.video_kbps),
        "-c:a", "aac", "-b:a", "64k", "-ac", str(spec.audio_channels), "-ar", str(spec.audio_rate),
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
        "-movflags", "+faststart", "-shortest", str(out),
    ]


def _constant_bitrate(kbps: int | None) -> list[str]:
    if kbps is None:
        return []
    rate = f"{kbps}k"
    return ["-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate, "-x264-params", "nal-hrd=cbr"]


def make_clip(spec: ClipSpec, cache_dir: Path) -> Clip:
    """Return the clip for `spec`, encoding it into `cache_dir` if it is not there yet.

    Safe against concurrent callers (file lock) and interrupted encodes (write, then rename).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"clip-{spec.cache_key()}.mp4"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not final.exists():
            partial = final.with_suffix(f".{os.getpid()}.part.mp4")
            try:
                subprocess.run(encode_command(spec, partial), check=True, timeout=ENCODE_TIMEOUT_S,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                os.replace(partial, final)
            except subprocess.CalledProcessError as exc:
                detail = exc.stderr.decode(errors="replace")
                raise RuntimeError(f"ffmpeg failed for {spec}: {detail}") from exc
            finally:
                partial.unlink(missing_ok=True)
    return Clip(spec=spec, path=final)


def default_cache_dir() -> Path:
    """Outside the checkout so clips survive between runs; override with PEERS_MEDIA_CACHE."""
    env = os.environ.get("PEERS_MEDIA_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rtsp-proxy-test-media"
