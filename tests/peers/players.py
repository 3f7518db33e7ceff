"""Real RTSP players (ffmpeg, ffprobe, gst-launch-1.0) run as subprocesses, with small results.

Every player has a hard deadline and is killed when it passes it or when the caller's code fails.
Frames are counted from the player's own per-frame output (ffmpeg `framecrc`, GStreamer
`multifilesink post-messages`), so a count is what the player actually received/decoded.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

from tests.peers.origin import PeerMissing

STDERR_TAIL_BYTES = 4000
STOP_GRACE_S = 5.0
KEPT_VIDEO_CRCS = 5


@dataclasses.dataclass(frozen=True)
class PlayResult:
    player: str
    url: str
    transport: str
    returncode: int | None  # None: killed at the deadline
    video_frames: int
    audio_frames: int
    first_frame_s: float | None  # launch -> first video frame (first frame of any kind if no video)
    wall_s: float
    timed_out: bool
    stderr_tail: str
    # ffmpeg only: CRCs of the first few video frames, to tell which content was played.
    first_video_crcs: tuple[str, ...] = ()
    # ffmpeg with a video_span only: each counted video frame's pts, in seconds after the first one's.
    video_times: tuple[float, ...] = ()
    span_complete: bool = False  # a video frame past the span arrived (the player was stopped there)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.video_frames > 0

    def describe(self) -> str:
        return (f"{self.player}/{self.transport} {self.url}: rc={self.returncode} timed_out={self.timed_out} "
                f"video={self.video_frames} audio={self.audio_frames} first_frame={self.first_frame_s} "
                f"wall={self.wall_s:.2f}s\n--- stderr tail ---\n{self.stderr_tail}")


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    codec_type: str
    codec_name: str
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    streams: tuple[StreamInfo, ...]
    duration_s: float | None

    def first(self, codec_type: str) -> StreamInfo | None:
        return next((s for s in self.streams if s.codec_type == codec_type), None)


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PeerMissing(f"{name} not found on PATH")
    return path


class _FrameCounter:
    """Counts frames per media kind from output lines; remembers when the first one arrived."""

    def __init__(self, started: float, classify: Callable[[str, _FrameCounter], str | None]):
        self.started = started
        self.classify = classify
        self.counts = {"video": 0, "audio": 0}
        self.first_video: float | None = None
        self.first_any: float | None = None
        self.stream_kinds: dict[str, str] = {}
        self.video_crcs: list[str] = []
        # ffmpeg only: count video frames whose pts lies within this many seconds of the first
        # video frame's, then stop the player (see ffmpeg_play's video_span).
        self.video_span: float | None = None
        self.time_bases: dict[str, float] = {}
        self.first_video_pts: int | None = None
        self.video_times: list[float] = []
        self.span_done = False

    def feed(self, line: str, now: float) -> None:
        kind = self.classify(line, self)
        if kind not in self.counts:
            return
        self.counts[kind] += 1
        if self.first_any is None:
            self.first_any = now - self.started
        if kind == "video" and self.first_video is None:
            self.first_video = now - self.started


def _run_counting(player: str, argv: list[str], url: str, transport: str, *, timeout: float,
                  classify: Callable[[str, _FrameCounter], str | None],
                  interrupt_after: float | None = None, video_span: float | None = None,
                  on_first_frame: Callable[[subprocess.Popen], None] | None = None) -> PlayResult:
    """Run `argv`, feed stdout lines to a counter. SIGINT after `interrupt_after` s (graceful stop
    for players without a duration option) or once the counter's `video_span` is done; SIGKILL at
    `timeout`. `on_first_frame(proc)` is called once, when the first frame has been counted."""
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        counter = _FrameCounter(started, classify)
        counter.video_span = video_span
        timed_out = False
        interrupted = False
        try:
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            pending = b""
            while True:
                now = time.monotonic()
                if now - started >= timeout:
                    timed_out = True
                    break
                if not interrupted and (counter.span_done or (
                        interrupt_after is not None and now - started >= interrupt_after)):
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
                wait = timeout - (now - started)
                if interrupt_after is not None and not interrupted:
                    wait = min(wait, interrupt_after - (now - started))
                if not sel.select(max(wait, 0.0)):
                    continue
                chunk = proc.stdout.read1(65536)
                if not chunk:
                    break
                now = time.monotonic()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    counter.feed(line.decode(errors="replace"), now)
                if on_first_frame is not None and counter.first_any is not None:
                    on_first_frame(proc)
                    on_first_frame = None
            sel.close()
            if timed_out:
                proc.kill()
            returncode = proc.wait(timeout=STOP_GRACE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        err.seek(0, 2)
        err.seek(max(0, err.tell() - STDERR_TAIL_BYTES))
        tail = err.read().decode(errors="replace")
    first = counter.first_video if counter.counts["video"] else counter.first_any
    return PlayResult(player=player, url=url, transport=transport,
                      returncode=None if timed_out else returncode,
                      video_frames=counter.counts["video"], audio_frames=counter.counts["audio"],
                      first_frame_s=first, wall_s=time.monotonic() - started, timed_out=timed_out,
                      stderr_tail=tail, first_video_crcs=tuple(counter.video_crcs),
                      video_times=tuple(counter.video_times), span_complete=counter.span_done)


_FRAMECRC_KIND = re.compile(r"^#media_type (\d+): (\w+)")
_FRAMECRC_TB = re.compile(r"^#tb (\d+): (\d+)/(\d+)")


def _classify_framecrc(line: str, counter: _FrameCounter) -> str | None:
    if line.startswith("#"):
        m = _FRAMECRC_KIND.match(line)
        if m:
            counter.stream_kinds[m.group(1)] = m.group(2)
        m = _FRAMECRC_TB.match(line)
        if m:
            counter.time_bases[m.group(1)] = int(m.group(2)) / int(m.group(3))
        return None
    index, sep, rest = line.partition(",")
    kind = counter.stream_kinds.get(index.strip()) if sep else None
    if counter.video_span is not None and kind is not None:
        if counter.span_done:
            return None
        if kind == "video":
            pts = int(rest.split(",", 2)[1])
            if counter.first_video_pts is None:
                counter.first_video_pts = pts
            since_first = (pts - counter.first_video_pts) * counter.time_bases[index.strip()]
            if since_first >= counter.video_span:
                counter.span_done = True
                return None
            counter.video_times.append(since_first)
    if kind == "video" and len(counter.video_crcs) < KEPT_VIDEO_CRCS:
        counter.video_crcs.append(rest.rsplit(",", 1)[-1].strip())
    return kind


def ffmpeg_play(url: str, *, transport: str = "udp", duration: float | None = None, decode: bool = True,
                timeout: float = 30.0, extra_input_args: Sequence[str] = (),
                video_span: float | None = None,
                on_first_frame: Callable[[subprocess.Popen], None] | None = None) -> PlayResult:
    """Play `url` with ffmpeg and count frames per stream.

    decode=False copies packets instead of decoding (cheap: for many concurrent players); each
    counted video packet is then one access unit as depacketized by ffmpeg's RTSP client.
    video_span=S counts the video frames whose pts is within S seconds of the first video frame's
    (audio frames until then) and stops ffmpeg there (SIGINT: returncode 255). For live streams:
    `duration` (-t) runs from the earliest stream's first timestamp, so how many video frames it
    holds depends on how audio and video lined up when the player joined; a span of video time
    holds a fixed number unless frames were lost, when the player sets up one stream
    (extra_input_args=("-allowed_media_types", "video")): with two, ffmpeg rebases a stream's
    timestamps at the first RTCP sender report.
    on_first_frame(proc): called with the ffmpeg process once its first frame arrived (e.g. to
    SIGSTOP it, holding its session open until the caller sends SIGCONT).
    """
    if transport not in ("udp", "tcp"):
        raise ValueError(f"transport must be udp or tcp, not {transport!r}")
    argv = [binary("ffmpeg"), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
            "-rtsp_transport", transport, *extra_input_args, "-i", url,
            "-map", "0:v?", "-map", "0:a?"]
    if not decode:
        argv += ["-c", "copy"]
    if duration is not None:
        argv += ["-t", f"{duration:.3f}"]
    argv += ["-flush_packets", "1", "-f", "framecrc", "-"]
    return _run_counting("ffmpeg", argv, url, transport, timeout=timeout, classify=_classify_framecrc,
                         video_span=video_span, on_first_frame=on_first_frame)


_GST_FRAME = re.compile(r'^Got message #\d+ from element "(video|audio)" \(element\): GstMultiFileSink')



def ffmpeg_play_all(urls: Sequence[str], **kwargs) -> list[PlayResult]:
    """ffmpeg_play of every URL at the same time (e.g. one player per proxy node); results in order."""
    with concurrent.futures.ThreadPoolExecutor(max(1, len(urls))) as pool:
        return list(pool.map(lambda url: ffmpeg_play(url, **kwargs), urls))

def _classify_gst(line: str, counter: _FrameCounter) -> str | None:
    m = _GST_FRAME.match(line)
    return m.group(1) if m else None


def gst_play(url: str, *, transport: str = "udp", duration: float | None = None,
             timeout: float = 30.0, user_id: str | None = None, user_pw: str | None = None) -> PlayResult:
    """Play `url` with gst-launch-1.0 rtspsrc, decode video and audio, count decoded buffers.

    Each branch ends in a multifilesink that posts one bus message per buffer; `-m` prints bus
    messages, which (unlike property notifications) are never coalesced. The sink writes each
    buffer with an atomic replace, so it must target a scratch file: pointed at /dev/null it
    replaces the device node with a regular file for the whole machine.
    With `duration`, the player gets SIGINT (EOS through -e) after that many seconds.
    `user_id`/`user_pw`: rtspsrc's credentials for a 401 (Basic or Digest).
    """
    if transport not in ("udp", "tcp"):
        raise ValueError(f"transport must be udp or tcp, not {transport!r}")
    # The caps on the link make rtspsrc's pads go to the matching branch whatever order they appear in.
    branch = "! application/x-rtp,media={kind} ! queue ! decodebin ! {kind}/x-raw " \
             "! multifilesink name={kind} location={scratch}/{kind}.raw post-messages=true sync=false async=false"
    with tempfile.TemporaryDirectory(prefix="gst-play-") as scratch:
        credentials = [f"user-id={user_id}", f"user-pw={user_pw}"] if user_id is not None else []
        argv = [binary("gst-launch-1.0"), "-m", "-e", "rtspsrc", f"location={url}", f"protocols={transport}",
                *credentials, "name=src", *("src. " + branch.format(kind="video", scratch=scratch)).split(),
                *("src. " + branch.format(kind="audio", scratch=scratch)).split()]
        return _run_counting("gst-launch", argv, url, transport, timeout=timeout, classify=_classify_gst,
                             interrupt_after=duration)


def ffprobe(url: str, *, transport: str = "tcp", timeout: float = 20.0) -> ProbeResult:
    argv = [binary("ffprobe"), "-v", "error", "-rtsp_transport", transport,
            "-show_streams", "-show_format", "-of", "json", url]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"ffprobe {url} did not finish within {timeout}s") from exc
    if done.returncode != 0:
        raise RuntimeError(f"ffprobe {url} failed (rc={done.returncode}): "
                           f"{done.stderr.decode(errors='replace')[-STDERR_TAIL_BYTES:]}")
    data = json.loads(done.stdout)
    streams = tuple(
        StreamInfo(codec_type=s.get("codec_type", ""), codec_name=s.get("codec_name", ""),
                   width=s.get("width"), height=s.get("height"),
                   sample_rate=int(s["sample_rate"]) if s.get("sample_rate") else None,
                   channels=s.get("channels"))
        for s in data.get("streams", []))
    duration = data.get("format", {}).get("duration")
    return ProbeResult(streams=streams, duration_s=float(duration) if duration not in (None, "N/A") else None)
