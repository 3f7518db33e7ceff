"""[MS-RTSP] checklist item 66 (3.2.5.4, 3.2.7.11): a proxy that requires proxy authentication
answers a Describe without valid Proxy-Authorization with 407 + Proxy-Authenticate and keeps the
TCP connection open for the retry; an unauthorised player gets 403. Here proxyd is used as a forward
proxy (absolute URL naming the Windows Media test origin, --allow-origin)."""

from __future__ import annotations

from urllib.parse import urlsplit

from proxyd.rtsp.auth import ClientAuth, Credentials, parse_challenges
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.runtime.test_player_auth import PASSWORD, USER, htdigest
from tests.proxyd.wmext.harness import running_proxy


async def test_describe_gets_407_then_the_retry_on_the_same_connection_plays_and_failures_get_403(
        wm_origin, tmp_path):
    wm_origin.set_entry("/clip.wmv", seed="proxy-auth", duration_ms=800)
    url = wm_origin.url("/clip.wmv")  # the origin's own URL: the player uses proxyd as its proxy
    async with running_proxy(wm_origin.url("/routed"), "--allow-origin", urlsplit(url).netloc,
                             "--player-auth", "digest", "--player-auth-file", htdigest(tmp_path),
                             "--auth-max-failures", "1") as server:
        player = await RawPlayer.connect("127.0.0.1", server.port)
        try:
            challenge = await player.request("DESCRIBE", url, ("Accept", "application/sdp"))
            assert (challenge.status, challenge.reason) == (407, "Proxy Authentication Required")
            offered = parse_challenges(challenge.headers.get_all("Proxy-Authenticate"))
            assert {c.algorithm for c in offered} == {"SHA-256", "MD5"} and wm_origin.requests == []

            auth = ClientAuth(Credentials(USER, PASSWORD))
            auth.accept(offered[-1])  # MD5, what Windows Media Player answers
            value = auth.authorization("DESCRIBE", url)
            described = await player.request("DESCRIBE", url, ("Accept", "application/sdp"),
                                             ("Proxy-Authorization", value))
            assert described.status == 200 and b"m=video" in described.body, described
            (seen,) = [r for r in wm_origin.requests if r.method == "DESCRIBE"]
            assert seen.header("Proxy-Authorization") is None and seen.header("Authorization") is None
        finally:
            await player.close()

        intruder = await RawPlayer.connect("127.0.0.1", server.port)
        try:
            wrong = ClientAuth(Credentials(USER, "guessed"))
            wrong.accept(offered[-1])
            first = await intruder.request("DESCRIBE", url, ("Proxy-Authorization",
                                                             wrong.authorization("DESCRIBE", url)))
            assert first.status == 407
            again = await intruder.request("DESCRIBE", url, ("Proxy-Authorization",
                                                             auth.authorization("DESCRIBE", url)))
            assert again.status == 403  # over --auth-max-failures: not even checked
        finally:
            await intruder.close()
