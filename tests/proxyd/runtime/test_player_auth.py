"""Players authenticating to proxyd (in-process server, scripted origin that records what it gets):
401/WWW-Authenticate for routed content, 407/Proxy-Authenticate as a forward proxy; the player's
credentials never reach the origin; requests naming a protected session need them too."""

from __future__ import annotations

import re

from proxyd.app.cli import config_from_args
from proxyd.app.server import ProxyServer
from proxyd.rtsp.auth import ClientAuth, Credentials, digest_ha1, parse_challenges
from proxyd.rtsp.uri import content_base, join_control_url
from tests.proxyd.runtime.rawplayer import RawPlayer
from tests.proxyd.runtime.scripted_origin import ScriptedOrigin

USER, PASSWORD, REALM = "viewer", "s3cret pass", "proxy players"


def htdigest(tmp_path, user=USER, password=PASSWORD):
    path = tmp_path / "players.htdigest"
    path.write_text("".join(f"{user}:{REALM}:{digest_ha1(a, user, REALM, password)}\n"
                            for a in ("MD5", "SHA-256")))
    return str(path)


async def start(tmp_path, origin, *args, mode="digest"):
    server = ProxyServer(config_from_args(["--listen", "127.0.0.1:0", "--player-auth", mode,
                                           "--player-auth-file", htdigest(tmp_path), *args], env={}))
    await server.start()
    return server


async def authenticated(player: RawPlayer, auth: ClientAuth, method: str, url: str, *headers,
                        header="Authorization"):
    value = auth.authorization(method, url)
    return await player.request(method, url, *headers, *([(header, value)] if value else []))


async def play(player: RawPlayer, auth: ClientAuth, url: str, header="Authorization") -> None:
    desc = await authenticated(player, auth, "DESCRIBE", url, header=header)
    assert desc.status == 200, desc
    controls = re.findall(r"(?m)^a=control:(\S+)\s*$", desc.body.decode())
    base = content_base(desc.headers, url)
    for i, control in enumerate(c for c in controls if c != "*"):
        resp = await authenticated(player, auth, "SETUP", join_control_url(base, control),
                                   ("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"),
                                   header=header)
        assert resp.status == 200, resp
        player.session = resp.headers.get("Session").split(";")[0]
    resp = await authenticated(player, auth, "PLAY", base, ("Range", "npt=0-"), header=header)
    assert resp.status == 200, resp


async def test_routed_content_needs_digest_and_the_origin_never_sees_the_credentials(tmp_path):
    origin = await ScriptedOrigin(packets=5).start()
    server = await start(tmp_path, origin, "--route", f"/vod=rtsp://127.0.0.1:{origin.port}")
    player = await RawPlayer.connect("127.0.0.1", server.port)
    url = f"rtsp://127.0.0.1:{server.port}/vod/movie"
    try:
        options = await player.request("OPTIONS", url)
        assert options.status == 200  # names no content
        challenge = await player.request("DESCRIBE", url)
        assert challenge.status == 401 and origin.requests == []
        offered = parse_challenges(challenge.headers.get_all("WWW-Authenticate"))
        assert [(c.scheme, c.algorithm, c.realm) for c in offered] == [("digest", "SHA-256", REALM),
                                                                      ("digest", "MD5", REALM)]
        wrong = ClientAuth(Credentials(USER, "guess"))
        wrong.accept(offered[0])
        assert (await authenticated(player, wrong, "DESCRIBE", url)).status == 401

        auth = ClientAuth(Credentials(USER, PASSWORD))
        auth.accept(offered[0])
        await play(player, auth, url)
        await player.frame_seen.wait()
        # A keepalive naming the session by "*" is checked against the session's content.
        keepalive = await player.request("GET_PARAMETER", "*")
        assert keepalive.status == 401
        assert (await authenticated(player, auth, "GET_PARAMETER", "*")).status == 200
        assert origin.methods()[:3] == ["DESCRIBE", "SETUP", "PLAY"]
        assert all("Authorization" not in r.headers for r in origin.requests)
    finally:
        await player.close()
        await server.stop()
        await origin.stop()


async def test_forward_proxy_asks_407_and_keeps_proxy_authorization_to_itself(tmp_path):
    origin = await ScriptedOrigin(packets=3).start()
    server = await start(tmp_path, origin, "--allow-origin", f"127.0.0.1:{origin.port}", mode="basic")
    player = await RawPlayer.connect("127.0.0.1", server.port)
    url = f"rtsp://127.0.0.1:{origin.port}/movie"  # an absolute URL naming the origin: forward use
    try:
        challenge = await player.request("DESCRIBE", url)
        assert (challenge.status, challenge.reason) == (407, "Proxy Authentication Required")
        (offered,) = parse_challenges(challenge.headers.get_all("Proxy-Authenticate"))
        assert (offered.scheme, offered.realm) == ("basic", REALM)
        assert "WWW-Authenticate" not in challenge.headers
        auth = ClientAuth(Credentials(USER, PASSWORD))
        auth.accept(offered)
        await play(player, auth, url, header="Proxy-Authorization")
        await player.frame_seen.wait()
        assert all("Proxy-Authorization" not in r.headers and "Authorization" not in r.headers
                   for r in origin.requests)
    finally:
        await player.close()
        await server.stop()
        await origin.stop()


async def test_too_many_failures_from_an_address_get_403_unchecked(tmp_path):
    origin = await ScriptedOrigin(packets=1).start()
    server = await start(tmp_path, origin, "--route", f"/vod=rtsp://127.0.0.1:{origin.port}",
                         "--auth-max-failures", "2", mode="basic")
    player = await RawPlayer.connect("127.0.0.1", server.port)
    url = f"rtsp://127.0.0.1:{server.port}/vod/movie"
    good = ClientAuth(Credentials(USER, PASSWORD))
    good.accept(parse_challenges(f'Basic realm="{REALM}"')[0])
    bad = ClientAuth(Credentials(USER, "nope"))
    bad.accept(parse_challenges(f'Basic realm="{REALM}"')[0])
    try:
        assert [(await authenticated(player, bad, "DESCRIBE", url)).status for _ in range(2)] == [401, 401]
        assert (await authenticated(player, good, "DESCRIBE", url)).status == 403
        assert origin.requests == []
    finally:
        await player.close()
        await server.stop()
        await origin.stop()
