"""ffmpeg plays through proxyd from a real GStreamer origin while proxyd reports to a live Django:
the session and its counters appear in /api/v1/sessions/ and on the live websocket."""

import pytest

from tests.e2e.conftest import wait_until
from tests.e2e.livefeed import AsgiServer, LiveFeed

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]


def ended_sessions(api, count: int):
    rows = api.get("/api/v1/sessions/?ordering=started_at")["results"]
    ended = [s for s in rows if s["ended_at"] and s["end_reason"]]
    return ended if len(ended) >= count else None


def login_cookie() -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="e2e-admin"))
    return client.cookies["sessionid"].value


def test_ffmpeg_session_and_counters_appear_in_rest_api_and_live_feed(
        api, live_server, controlled_proxyd, shared_gst_origin, peer_players, test_clips):
    proxy = controlled_proxyd(live_server.url, routes={"/vod": shared_gst_origin.url()})
    with AsgiServer() as asgi, LiveFeed(asgi.port, login_cookie()) as feed:
        result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport="tcp")
        assert result.ok, result.describe()
        [session] = wait_until(lambda: ended_sessions(api, 1), timeout=20, what="the ended session")
        started = feed.wait_for(lambda e: e["event"] == "session.started"
                                and e["payload"]["session_id"] == session["session_id"], timeout=10)
        ended = feed.wait_for(lambda e: e["event"] == "session.ended"
                              and e["payload"]["session_id"] == session["session_id"], timeout=10)
    assert session["node"] == "e2e-node"
    assert session["served_from"] == "origin"
    assert session["end_reason"] == "teardown"
    assert session["url"] == proxy.url("/vod/clip")
    assert session["origin_url"] == shared_gst_origin.url("clip")
    assert session["transports"] == ["tcp", "tcp"]
    assert "Lavf" in session["user_agent"]
    assert session["packets_out"] >= result.video_frames  # at least one RTP packet per frame
    assert session["bytes_out"] > 12 * session["packets_out"]  # more than bare RTP headers
    assert session["packets_in"] >= session["packets_out"] - 5
    assert started["payload"]["url"] == session["url"] and started["payload"]["ended_at"] is None
    assert ended["payload"]["bytes_out"] == session["bytes_out"]
    detail = api.get(f"/api/v1/sessions/{session['id']}/")
    assert detail["session_id"] == session["session_id"] and detail["live"] is False
