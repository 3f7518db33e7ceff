"""Player access set through the REST API reaches the node that serves the origin: ffmpeg plays with
the player's credentials through a proxyd configured only by the live web app's snapshot, and gets
401 and no media without them."""

import pytest

from tests.e2e.conftest import wait_until
from tests.proxyd.cache.helpers import wait_for_log

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]


def test_player_credentials_from_the_control_plane_protect_the_route(
        api, live_server, control_node, controlled_proxyd, gst_origin, peer_players):
    node, _ = control_node
    status, created = api.post("/api/v1/origins/", {
        "name": "members", "base_url": gst_origin.url(), "route_prefix": "/members", "transport": "tcp",
        "nodes": [node.name], "player_access": "digest", "player_realm": "Members only",
        "player_credentials": [{"username": "alice", "password": "Wonder-1and"}]})
    assert status == 201, created
    proxy = controlled_proxyd(live_server.url)
    wait_for_log(proxy.log_path, r"routes now \[.*/members=")
    url = proxy.url("/members/clip")

    refused = peer_players.ffmpeg_play(url, transport="tcp")
    assert not refused.ok and refused.video_frames == 0 and "401" in refused.stderr_tail, refused.describe()
    played = peer_players.ffmpeg_play(url.replace("rtsp://", "rtsp://alice:Wonder-1and@"), transport="tcp")
    assert played.ok, played.describe()
    wait_until(lambda: api.get("/api/v1/sessions/")["count"] >= 1, timeout=20, what="the played session")
    assert "Wonder-1and" not in proxy.log_path.read_text()
