"""WmState: the origin's event subscription is found whatever spelling of the content URL asks."""

from __future__ import annotations

import pytest

from proxyd.wm.state import WmState

SUBSCRIBED = 'no-cache, x-wms-event-subscription="remote-open, remote-close"'


@pytest.mark.parametrize("asked", [
    "rtsp://origin:554/clip.wmv",
    "rtsp://ORIGIN/clip.wmv/",
    "rtsp://origin/clip.wmv/audio",  # a stream URL of the content
    "rtsp://user@origin/clip.wmv?token=1",
])
def test_subscription_found_by_any_spelling(asked: str) -> None:
    state = WmState()
    state.observe_cache_control("rtsp://origin/clip.wmv", SUBSCRIBED)
    assert state.subscription(asked) == ("remote-open", "remote-close")


def test_other_content_and_root_subscription() -> None:
    state = WmState()
    state.observe_cache_control("rtsp://origin:8554/clip.wmv", SUBSCRIBED)
    assert state.subscription("rtsp://origin/clip.wmv") == ()  # another port: another server
    state.observe_cache_control("rtsp://origin/", SUBSCRIBED)
    assert state.subscription("rtsp://origin:554/other.wmv") == ("remote-open", "remote-close")
