"""ffmpeg players share a live split in proxyd (--live, real GStreamer live origin) while proxyd reports
to a live Django: the split shows in /api/v1/splits/ with its players, then as ended."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import wait_until
from tests.proxyd.split.conftest import LIVE
from tests.proxyd.split.players import play_many

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]


def test_a_live_split_and_its_players_appear_in_the_rest_api_then_end(api, live_server, controlled_proxyd,
                                                                       gst_origin_factory):
    origin = gst_origin_factory(live="live", live_options=LIVE)
    proxy = controlled_proxyd(live_server.url, routes={"/tv": origin.url("/")},
                              extra_args=["--live", "/tv", "--split-linger", "1"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        players = play_many(pool, proxy.url("/tv/live"), ["udp", "tcp"], duration=5, timeout=30)
        [live] = wait_until(lambda: [s for s in api.get("/api/v1/splits/?live=true")["results"]
                                     if s["players"] == 2], timeout=20, what="a live split with 2 players")
        results = [f.result() for f in players]
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert (live["node"], live["state"], live["url"], live["player_url"]) == (
        "e2e-node", "live", origin.url("/live"), proxy.url("/tv/live"))
    assert live["origin_transport"] == "udp" and live["ended_at"] is None
    [ended] = wait_until(lambda: api.get("/api/v1/splits/?state=ended")["results"], timeout=20,
                         what="the ended split")
    assert ended["id"] == live["id"] and ended["end_reason"] == "linger_expired"
    assert (ended["players"], ended["peak_players"], ended["reconnects"]) == (0, 2, 0)
    assert ended["bytes_in"] > ended["packets_in"] > 0
    assert api.get("/api/v1/splits/?live=true")["results"] == []
    sessions = api.get("/api/v1/sessions/?served_from=split")["results"]
    assert len(sessions) == 2 and {s["origin_url"] for s in sessions} == {ended["url"]}
