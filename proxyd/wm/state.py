"""Per-server Windows Media state: what each origin asked for (event subscriptions per content,
Supported features per origin). Bounded: oldest entries are forgotten first."""

from __future__ import annotations

import collections
import weakref

from proxyd.rtsp.uri import url_key
from proxyd.wm.cache_control import parse_cache_control
from proxyd.wm.supported import parse_supported

MAX_SUBSCRIPTIONS = 10_000
MAX_ORIGINS = 1_000


def content_key(url: str) -> str:
    """Aggregate content URL as a lookup key: its identity (proxyd.rtsp.uri), without the query."""
    return url_key(url.split("?", 1)[0]).rstrip("/")  # the root too: parents are walked without "/"


class WmState:
    def __init__(self, *, max_subscriptions: int = MAX_SUBSCRIPTIONS, max_origins: int = MAX_ORIGINS) -> None:
        self.max_subscriptions = max_subscriptions
        self.max_origins = max_origins
        self.subscriptions: collections.OrderedDict[str, tuple[str, ...]] = collections.OrderedDict()
        self.origin_features: collections.OrderedDict[tuple[str, int], frozenset[str]] = \
            collections.OrderedDict()
        self.opened: weakref.WeakSet = weakref.WeakSet()  # sessions whose remote-open was reported

    # --- x-wms-event-subscription per content ([MS-RTSP] 2.2.6.2.10) ---
    def observe_cache_control(self, origin_url: str, cache_control: str | None) -> None:
        """Store (or clear) the origin's subscription for a content from a Describe/GCI/Announce."""
        if cache_control is None:
            return  # no Cache-Control at all: keep what we knew
        events = parse_cache_control(cache_control).event_subscription or ()
        key = content_key(origin_url)
        self.subscriptions[key] = tuple(events)
        self.subscriptions.move_to_end(key)
        while len(self.subscriptions) > self.max_subscriptions:
            self.subscriptions.popitem(last=False)

    def subscription(self, origin_url: str) -> tuple[str, ...]:
        """Events the origin subscribed to for this content or one of its stream URLs; () if unknown."""
        key = content_key(origin_url)
        while key:
            found = self.subscriptions.get(key)
            if found is not None:
                return found
            parent, sep, _ = key.rpartition("/")
            if not sep or parent.endswith(("rtsp:/", "rtsp:")):
                return ()
            key = parent
        return ()

    # --- Supported per origin ([MS-RTSP] 2.2.6.10) ---
    def observe_origin_supported(self, origin: tuple[str, int], value: str | None) -> None:
        if value is None:
            return  # a missing header leaves the set unchanged
        self.origin_features[origin] = parse_supported(value)
        self.origin_features.move_to_end(origin)
        while len(self.origin_features) > self.max_origins:
            self.origin_features.popitem(last=False)

    def origin_supports(self, origin: tuple[str, int], feature: str) -> bool:
        return feature in self.origin_features.get(origin, frozenset())
