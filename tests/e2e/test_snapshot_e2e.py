"""The control plane configures a running proxyd: an Origin created through the REST API becomes a
route (proxyd has no --route), and terminating a session through the API ends the player's session."""

import threading

import pytest

from tests.e2e.conftest import wait_until
from tests.peers.fixtures import LIVE_MOUNT

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]

TERMINATE_DEADLINE_S = 10.0


def test_route_from_snapshot_plays_and_terminate_ends_the_player(api, live_server, controlled_proxyd,
                                                                 gst_origin, peer_players):
    status, created = api.post("/api/v1/origins/", {"name": "gst", "base_url": gst_origin.url(),
                                                    "route_prefix": "/cp", "transport": "tcp"})
    assert status == 201, created
    proxy = controlled_proxyd(live_server.url)  # no --route: routes come from the snapshot only

    vod = peer_players.ffmpeg_play(proxy.url("/cp/clip"), transport="tcp")
    assert vod.ok, vod.describe()

    live_result = {}
    player = threading.Thread(target=lambda: live_result.update(
        play=peer_players.ffmpeg_play(proxy.url(f"/cp/{LIVE_MOUNT}"), transport="tcp", timeout=60)))
    player.start()
    try:
        def live_session():
            rows = api.get("/api/v1/sessions/?live=true")["results"]
            return next((s for s in rows if s["url"].endswith(f"/cp/{LIVE_MOUNT}")), None)

        session = wait_until(live_session, timeout=20, what="the live session in /api/v1/sessions/")
        status, body = api.post(f"/api/v1/sessions/{session['id']}/terminate/")
        assert status == 202, body
        player.join(TERMINATE_DEADLINE_S + 5)  # snapshot poll + close; ffmpeg then exits
        assert not player.is_alive(), "ffmpeg still playing after terminate"
    finally:
        player.join(65)
    assert live_result["play"].video_frames > 0 and not live_result["play"].timed_out
    ended = wait_until(lambda: (row := api.get(f"/api/v1/sessions/{session['id']}/"))["ended_at"] and row,
                       timeout=10, what="the terminated session to end")
    assert ended["end_reason"] == "terminated"
    assert ended["origin"] == "gst"
    status, again = api.post(f"/api/v1/sessions/{session['id']}/terminate/")
    assert status == 409, again
