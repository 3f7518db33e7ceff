"""The seed's sequence, [MS-RTSP] 4.6.1 "Sequencing for Playlist Content Delivery", step by step
through a real proxyd process with --cache-dir reporting to the live web app (PostgreSQL) and a real
Celery worker, in front of the spec-built WM test origin, played by the WMPlayer-style client:

DESCRIBE (miss) -> 200 with SDP and Cache-Control -> SETUP per stream -> PLAY -> RTP -> the events
the origin subscribed to reach it (SendEvent through the Celery uplink: a control plane is present)
-> LogPlay -> 200 -> the play log row in /api/v1/playlogs/ -> the entry goes stale (the origin's
max-age=1) -> DESCRIBE -> GetContentInfo revalidation -> unchanged: served from the cache, the
origin's DESCRIBE count unchanged -> the origin's content changes -> fetched again (DESCRIBE + 1).

Once for a single file, once for a two-entry server-side playlist (every entry's EndOfStream and
Announce, both entries from the cache on the replay).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlsplit

import pytest

from tests.appliance.tasks.worker_fixtures import PROXY_GUID
from tests.e2e.conftest import wait_until
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

REMOTE_OPEN, REMOTE_CLOSE, REMOTE_LOG = 28, 29, 30  # [MS-WMSP] 2.2.5 event types


def under(request_path: str, path: str) -> bool:
    """The entry's own URL or one of its stream URLs."""
    return request_path.rstrip("/") == path or request_path.startswith(path + "/")


def from_proxyd(origin, kind: str, path: str) -> int:
    """Requests of `kind` proxyd sent for `path`; the Celery worker's own revalidation probes (beat,
    control-plane side) carry the worker's proxy GUID and are not part of the player's sequence."""
    return sum(1 for r in origin.requests if r.kind == kind and under(r.path, path)
               and PROXY_GUID not in (r.header("User-Agent") or ""))


def play(url: str):
    result = asyncio.run(WMPlayer(url, transport="tcp", speed=5).run())
    assert result.error is None, result.error
    return result


def asf_packets(result) -> list[list[bytes]]:
    return [[p for s in entry.streams.values() for p in s.asf_packets] for entry in result.entries]


def assert_player_sequence(result, entries: int) -> None:
    """The player's requests in the seed's order, each answered 200, RTP on every stream."""
    kinds = [kind for kind, _ in result.responses]
    assert kinds[:4] == ["DESCRIBE", "SETUP", "SETUP", "PLAY"], kinds
    assert kinds.index("LogPlay") > kinds.index("PLAY") and kinds[-1] == "TEARDOWN", kinds
    assert all(r.status == 200 for _, r in result.responses), [(k, r.status) for k, r in result.responses]
    describe = result.describe
    assert describe.header("Content-Type") == "application/sdp" and describe.body.startswith(b"v=0")
    assert "x-wms-event-subscription" in describe.header("Cache-Control")
    assert len(result.entries) == entries and result.status("LogPlay") == [200] * entries
    for entry in result.entries:
        assert entry.eos is not None  # EndOfStream per entry
        assert all(stream.packets > 0 for stream in entry.streams.values())
    if entries > 1:  # more entries follow the first: its EndOfStream says so, then the next's Announce
        assert b"End-Of-Playlist-Entry: true" in result.entries[0].eos.body
        assert b"end-of-playlist-entry" not in result.entries[-1].eos.body.lower()
        assert len(result.announces) == entries - 1
        assert [e.gen_id for e in result.entries[1:]] == \
            [int(a.header("X-Playlist-Gen-Id")) for a in result.announces]


def assert_sent_by_the_uplink(origin) -> None:
    """Every SendEvent came from the Celery worker (its proxy GUID), none from proxyd itself: with a
    control plane only the uplink sends them, never both."""
    agents = [dict((k.lower(), v) for k, v in e.headers)["user-agent"] for e in origin.send_events]
    assert agents and all(PROXY_GUID in agent for agent in agents), agents


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_stale(api, origin_url: str) -> None:
    """Until the node reported the stored entry and its lifetime (the origin's max-age=1) is over:
    observable state in /api/v1/content/, no fixed wait. (The worker's own revalidation may have
    marked the row stale meanwhile: that is the control plane's view, proxyd still holds the entry.)"""
    def expired():
        rows = api.get(f"/api/v1/content/?url={origin_url}&state=complete&state=stale")["results"]
        now = dt.datetime.now(dt.timezone.utc)
        return [r for r in rows if r["url"] == origin_url and r["expires_at"] and parse_time(r["expires_at"]) < now]

    wait_until(expired, timeout=30, what=f"{origin_url} stored and expired")


def ended_session(api, url: str, count: int) -> dict | None:
    rows = api.get(f"/api/v1/sessions/?url={url}&ordering=started_at")["results"]
    ended = [s for s in rows if s["ended_at"]]
    return ended[count - 1] if len(ended) >= count else None


def remote_events(origin, path: str, event_type: int) -> list:
    return [e for e in origin.send_events if e.parsed is not None and e.parsed.event_type == event_type
            and under(urlsplit(e.url).path, path)]


@pytest.mark.parametrize("playlist", [(), ("second",)], ids=["file", "two-entry-playlist"])
def test_seed_4_6_1_sequence_through_proxyd_web_app_and_celery(
        playlist, api, live_server, controlled_proxyd, celery_worker_process, wm_origin, tmp_path):  # noqa: F811
    path = "/pl.wsx" if playlist else "/clip.wmv"
    entries = 1 + len(playlist)
    wm_origin.set_entry(path, seed="seed-461", playlist=playlist, duration_ms=800, max_age=1)
    proxy = controlled_proxyd(live_server.url, routes={"/wm": wm_origin.url("")}, cache_dir=tmp_path / "cache")
    url, origin_url = proxy.url("/wm" + path), wm_origin.url(path)

    # DESCRIBE (miss) -> 200 SDP + Cache-Control -> SETUP per stream -> PLAY -> RTP ... LogPlay -> 200
    first = play(url)
    assert_player_sequence(first, entries)
    assert from_proxyd(wm_origin, "DESCRIBE", path) == 1 and from_proxyd(wm_origin, "PLAY", path) == entries
    # The subscribed events reach the origin through the uplink: the player's remote-log and its
    # legacy LogPlay converted to a rendering log, per entry.
    assert wm_origin.wait_for(lambda: len(remote_events(wm_origin, path, REMOTE_LOG)) >= 1 + entries, timeout=45)
    assert_sent_by_the_uplink(wm_origin)

    # The play log row in the REST API.
    def playlogs():
        rows = api.get(f"/api/v1/playlogs/?url={url}")["results"]
        return [r for r in rows if r["kind"] == "logplay"] or None

    rows = wait_until(lambda: (found := playlogs()) and len(found) == entries and found, timeout=30,
                      what="the LogPlay rows in /api/v1/playlogs/")
    assert all(r["node"] == "e2e-node" and r["session"] for r in rows)

    # The entry goes stale; a DESCRIBE is revalidated with GetContentInfo: unchanged, from the cache.
    wait_stale(api, origin_url)
    describes, plays = from_proxyd(wm_origin, "DESCRIBE", path), from_proxyd(wm_origin, "PLAY", path)
    gcis = from_proxyd(wm_origin, "GetContentInfo", path)
    again = play(url)
    assert_player_sequence(again, entries)
    assert from_proxyd(wm_origin, "GetContentInfo", path) == gcis + 1
    assert from_proxyd(wm_origin, "DESCRIBE", path) == describes  # unchanged: not fetched again
    assert from_proxyd(wm_origin, "PLAY", path) == plays  # every entry served from the cache
    assert asf_packets(again) == asf_packets(first)
    session = wait_until(lambda: ended_session(api, url, 2), timeout=30, what="the second session ended")
    assert session["served_from"] == "cache"
    # The origin does not see a cache-served play: proxyd tells it (remote-open / remote-close).
    assert wm_origin.wait_for(lambda: remote_events(wm_origin, path, REMOTE_OPEN)
                              and remote_events(wm_origin, path, REMOTE_CLOSE), timeout=45)

    # The origin's content changes: the next stale DESCRIBE finds out and fetches it again.
    wm_origin.change_content(path)
    wait_stale(api, origin_url)
    changed = play(url)
    assert_player_sequence(changed, entries)
    assert from_proxyd(wm_origin, "GetContentInfo", path) == gcis + 2
    assert from_proxyd(wm_origin, "DESCRIBE", path) == describes + 1
    assert from_proxyd(wm_origin, "PLAY", path) == plays + entries
    assert all(new != old for new, old in zip(asf_packets(changed), asf_packets(first)))
    assert_sent_by_the_uplink(wm_origin)
