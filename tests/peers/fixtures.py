"""pytest fixtures for real peers: test clips, a GStreamer RTSP origin, players, proxyd.

Registered suite-wide by tests/conftest.py. A fixture skips (with the reason) only when a required
binary or library is missing; every other failure is an error.

    def test_x(gst_origin, proxyd_process, peer_players):
        proxy = proxyd_process(routes={"/vod": gst_origin.url()})
        result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers import players
from tests.peers.media import Clip, ClipSpec, MediaToolMissing, default_cache_dir, ffmpeg_binary, make_clip
from tests.peers.origin import GstOrigin, PeerMissing, check_gst_origin_available
from tests.peers.perl_origin import PerlRtspOrigin, check_perl_origin_available
from tests.peers.proxyd_proc import ProxydProcess, free_tcp_port, log_tail

LIVE_MOUNT = "live"
SHORT_CLIP_S = 3


@dataclasses.dataclass(frozen=True)
class TestClips:
    """`main` and `changed` have the same shape and differ in content (origin content changed).

    Both are SHORT_CLIP_S long (three 1 s GOPs): most tests play a clip to its end in real time, so
    its length is the suite's wall time. `long` (6 s) is for tests that seek into the middle.
    """

    __test__ = False  # not a test class despite the name

    main: Clip
    changed: Clip
    long: Clip
    cache_dir: Path

    def make(self, spec: ClipSpec) -> Clip:
        return make_clip(spec, self.cache_dir)


def _skip_if_missing(check: Callable[[], object]) -> None:
    try:
        check()
    except (PeerMissing, MediaToolMissing) as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def test_clips() -> TestClips:
    _skip_if_missing(ffmpeg_binary)
    cache = default_cache_dir()
    return TestClips(main=make_clip(ClipSpec(duration_s=SHORT_CLIP_S), cache),
                     changed=make_clip(ClipSpec(duration_s=SHORT_CLIP_S, variant=1), cache),
                     long=make_clip(ClipSpec(), cache), cache_dir=cache)


@pytest.fixture(scope="session")
def _gst_origin_available() -> None:
    _skip_if_missing(check_gst_origin_available)


@pytest.fixture
def gst_origin_factory(_gst_origin_available, tmp_path) -> Iterator[Callable[..., GstOrigin]]:
    """Start extra origins with custom options (protocols, headers, session_timeout, live_options...)."""
    started: list[GstOrigin] = []

    def start(**kwargs) -> GstOrigin:
        kwargs.setdefault("stderr_path", tmp_path / f"gst-origin-{len(started)}.log")
        origin = GstOrigin(**kwargs)
        started.append(origin)
        return origin.start()

    yield start
    for origin in started:
        origin.stop()


def _default_origin(clips: TestClips, stderr_path: Path) -> GstOrigin:
    return GstOrigin(vod={"clip": clips.main.path, "changed": clips.changed.path, "long": clips.long.path}, live=LIVE_MOUNT,
                     stderr_path=stderr_path)


@pytest.fixture
def gst_origin(_gst_origin_available, test_clips, tmp_path) -> Iterator[GstOrigin]:
    """Fresh origin per test: /clip (test_clips.main), /changed (test_clips.changed), /live."""
    with _default_origin(test_clips, tmp_path / "gst-origin.log") as origin:
        yield origin


@pytest.fixture(scope="session")
def shared_gst_origin(_gst_origin_available, test_clips, tmp_path_factory) -> Iterator[GstOrigin]:
    """Same mounts as `gst_origin`, one process for the session: only for tests that do not count
    origin events and do not restart it."""
    log = tmp_path_factory.mktemp("shared-origin") / "gst-origin.log"
    with _default_origin(test_clips, log) as origin:
        yield origin


@pytest.fixture
def perl_origin_factory(tmp_path) -> Iterator[Callable[..., PerlRtspOrigin]]:
    """Start rtsp-server-perl origins, each fed a looped clip by ffmpeg:
    perl_origin_factory(clip_path, mount="live") -> started PerlRtspOrigin (url() is the stream)."""
    _skip_if_missing(check_perl_origin_available)
    started: list[PerlRtspOrigin] = []

    def start(clip_path: Path, **kwargs) -> PerlRtspOrigin:
        kwargs.setdefault("log_path", tmp_path / f"perl-origin-{len(started)}.log")
        origin = PerlRtspOrigin(clip_path, **kwargs)
        started.append(origin)
        return origin.start()

    yield start
    for origin in started:
        origin.stop()


@pytest.fixture
def peer_players():
    """The players module, after checking its binaries are installed."""
    for name in ("ffmpeg", "ffprobe", "gst-launch-1.0"):
        _skip_if_missing(lambda name=name: players.binary(name))
    return players


@pytest.fixture
def free_port() -> int:
    return free_tcp_port()


@pytest.fixture
def proxyd_process(tmp_path) -> Iterator[Callable[..., ProxydProcess]]:
    """Factory: proxyd_process(routes={"/vod": origin_url}, cache_dir=..., extra_args=[...]).

    Waits until the RTSP port accepts connections. At teardown sends SIGTERM and asserts proxyd
    exited by itself, with status 0, before the deadline (pass expect_clean_exit=False to skip that
    for tests that crash it on purpose). Its log is tmp_path/proxyd-N.log.
    """
    started: list[tuple[ProxydProcess, bool]] = []

    def start(*, routes, expect_clean_exit: bool = True, **kwargs) -> ProxydProcess:
        kwargs.setdefault("log_path", tmp_path / f"proxyd-{len(started)}.log")
        proc = ProxydProcess(routes=routes, **kwargs)
        started.append((proc, expect_clean_exit))
        return proc.start()

    yield start
    problems = []
    for proc, expect_clean_exit in started:
        rc = proc.stop()
        if not expect_clean_exit or rc is None:
            continue
        if proc.killed:
            problems.append(f"proxyd pid {proc.pid} ignored SIGTERM and was killed")
        elif rc != 0:
            problems.append(f"proxyd pid {proc.pid} exited with {rc} after SIGTERM")
        else:
            continue
        problems[-1] += f"\n--- {proc.log_path} ---\n{log_tail(proc.log_path)}"
    assert not problems, "\n".join(problems)
