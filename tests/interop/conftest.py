"""Origins for the interop matrix: one per origin style (styles.py), shared by that style's tests
(module scope), started again when a test stopped it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.styles import CLIP, MOUNT, PERL_CLIP, STYLES, OriginStyle
from tests.peers.origin import (DEFAULT_RTSP_PORT, GstOrigin, PeerMissing, check_gst_origin_available,
                                start_on_free_loopback)
from tests.peers.perl_origin import PerlRtspOrigin, check_perl_origin_available


def skip_if_missing(check) -> None:
    try:
        check()
    except PeerMissing as exc:
        pytest.skip(str(exc))


def _start_gst(style: OriginStyle, clip_path, log_dir) -> GstOrigin:
    vod = {} if style.live else {MOUNT: clip_path}
    log = log_dir / "gst-origin.log"
    if not style.default_port:
        return GstOrigin(vod=vod, shape=style.shape, stderr_path=log).start()
    return start_on_free_loopback(lambda host: GstOrigin(vod=vod, shape=style.shape, host=host,
                                                         port=DEFAULT_RTSP_PORT, stderr_path=log))


@pytest.fixture(scope="module", params=STYLES, ids=[s.name for s in STYLES])
def style_origin(request, test_clips, tmp_path_factory) -> Iterator[tuple[OriginStyle, object]]:
    """(style, origin) with the origin serving `MOUNT`; tests may stop it (see `running_origin`)."""
    style: OriginStyle = request.param
    log_dir = tmp_path_factory.mktemp(f"origin-{style.name}")
    if style.server == "perl":
        skip_if_missing(check_perl_origin_available)
        origin = PerlRtspOrigin(test_clips.make(PERL_CLIP).path, mount=MOUNT,
                                port=DEFAULT_RTSP_PORT if style.default_port else None,
                                log_path=log_dir / "perl-origin.log").start()
    else:
        skip_if_missing(check_gst_origin_available)
        origin = _start_gst(style, test_clips.make(CLIP).path, log_dir)
    try:
        yield style, origin
    finally:
        origin.stop()


@pytest.fixture
def running_origin(style_origin):
    """The style's origin, started again (same address) if an earlier test stopped it or the style
    wants one per test."""
    style, origin = style_origin
    if style.origin_per_test:
        origin.stop()
    if not origin.running:
        origin.start()
    return style, origin
