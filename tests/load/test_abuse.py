"""Load and abuse against a real proxyd process: idle and slow-header connections, a start storm.

The hostile clients connect from 127.0.0.2 (Linux routes all of 127/8 to loopback), the players from
127.0.0.1, so the per-address limit separates them as it would separate two hosts. Start latency
figures are printed by bench/abuse.py; these tests check the outcome of each connection.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.proxyd.runtime.rawplayer import RawPlayer

pytestmark = pytest.mark.peers

ATTACKER = "127.0.0.2"
IDLE_CONNECTIONS = 1000
PER_ADDRESS = 50
REQUEST_TIMEOUT = 2.0


async def open_idle(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` TCP connections from ATTACKER that never send anything (non-blocking sockets)."""
    loop = asyncio.get_running_loop()
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.bind((ATTACKER, 0))
        await loop.sock_connect(s, (host, port))
        socks.append(s)
    return socks


async def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    """True when the proxy closes (EOF or reset) this connection within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            return await loop.sock_recv(s, 1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def slow_header_client(host: str, port: int) -> bool:
    """Sends a request head one byte every 0.3 s; True when the proxy closes it before it completes."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=(ATTACKER, 0))
    head = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: " + b"s" * 200 + b"\r\n\r\n"
    try:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 0.3) == b"":
                    return True
            except TimeoutError:
                continue
        return False
    except ConnectionError:
        return True
    finally:
        writer.close()


async def test_idle_and_slow_header_clients_do_not_stop_new_players(shared_gst_origin, proxyd_process, peer_players,
                                                                   test_clips):
    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url()},
                           extra_args=["--max-connections-per-address", str(PER_ADDRESS),
                                       "--request-timeout", str(REQUEST_TIMEOUT)])
    idle = await open_idle(proxy.host, proxy.port, IDLE_CONNECTIONS)
    try:
        slow = [asyncio.ensure_future(slow_header_client(proxy.host, proxy.port)) for _ in range(5)]
        # Beyond the per-address limit the proxy closes at once; the others after the request timeout.
        refused = await asyncio.gather(*(closed_by_peer(s, 1.0) for s in idle[PER_ADDRESS:PER_ADDRESS + 50]))
        assert all(refused)
        result = await asyncio.to_thread(peer_players.ffmpeg_play, proxy.url("/vod/clip"), transport="tcp")
        assert result.ok, result.describe()
        assert result.video_frames >= 0.95 * test_clips.main.video_frames, result.describe()
        assert all(await asyncio.gather(*slow)), "a slow-header client outlived --request-timeout"
        assert all(await asyncio.gather(*(closed_by_peer(s, REQUEST_TIMEOUT + 5) for s in idle[:PER_ADDRESS])))
    finally:
        for s in idle:
            s.close()


async def start_one(host: str, port: int, url: str) -> str:
    """DESCRIBE/SETUP/PLAY over TCP until the first media frame: "started", or the refusal status."""
    try:
        player = await RawPlayer.connect(host, port)
    except ConnectionError:
        return "refused"
    try:
        desc = await player.request("DESCRIBE", url, ("Accept", "application/sdp"), timeout=20)
        if desc.status != 200:
            return str(desc.status)
        await player.play_tcp(url)
        await asyncio.wait_for(player.frame_seen.wait(), 20)
        await player.request("TEARDOWN", url, timeout=20)
        return "started"
    except (ConnectionError, asyncio.IncompleteReadError):
        return "refused"
    finally:
        await player.close()


async def test_a_start_storm_either_starts_or_is_refused_quickly(shared_gst_origin, proxyd_process, tmp_path):
    """200 players at once against a node limited to 120 connections, from the cache: none hangs."""
    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url()}, cache_dir=tmp_path / "cache",
                           extra_args=["--max-connections", "120", "--max-connections-per-address", "1000",
                                       "--cache-ttl", "300"])
    url = proxy.url("/vod/clip")
    assert await start_one(proxy.host, proxy.port, url) == "started"  # fills the cache
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def timed() -> tuple[str, float]:
        outcome = await start_one(proxy.host, proxy.port, url)
        return outcome, loop.time() - started

    async with asyncio.timeout(90):
        timed_outcomes = await asyncio.gather(*(timed() for _ in range(200)))
    outcomes = [o for o, _ in timed_outcomes]
    for kind in sorted(set(outcomes)):  # the figure (pytest -rP): how many, and how soon they were done
        seconds = sorted(t for o, t in timed_outcomes if o == kind)
        print(f"start storm: {kind} {len(seconds)}, done after median {seconds[len(seconds) // 2]:.2f} s, "
              f"max {seconds[-1]:.2f} s")
    assert set(outcomes) <= {"started", "503", "refused"}, sorted(set(outcomes))
    assert outcomes.count("started") >= 100, {o: outcomes.count(o) for o in set(outcomes)}


async def test_a_describe_flood_opens_at_most_the_per_address_number_of_origin_requests(shared_gst_origin,
                                                                                        proxyd_process):
    """200 connections from one address at once, each DESCRIBEing a different uncached URL."""
    limit, flood = 10, 200
    proxy = proxyd_process(routes={"/vod": shared_gst_origin.url()},
                           extra_args=["--max-connections-per-address", str(limit)])
    mark = shared_gst_origin.mark()
    settled = 0
    all_settled = asyncio.Event()

    async def describe(n: int) -> int | None:
        nonlocal settled
        status, writer = None, None
        try:
            reader, writer = await asyncio.open_connection(proxy.host, proxy.port, local_addr=(ATTACKER, 0))
            writer.write(f"DESCRIBE {proxy.url(f'/vod/flood-{n}')} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            status = int((await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60))[9:12])
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # refused over the limit (reset)
        settled += 1
        if settled == flood:
            all_settled.set()
        try:
            # Hold every answered connection until proxyd has answered or refused all the others: the
            # flood is concurrent however slowly a loaded machine accepts it (SYNs over the listen
            # backlog are retried seconds later).
            await asyncio.wait_for(all_settled.wait(), 120)
        finally:
            if writer is not None:
                writer.close()
        return status

    statuses = await asyncio.gather(*(describe(n) for n in range(flood)))
    answered = [s for s in statuses if s is not None]
    assert 1 <= len(answered) <= limit, statuses
    assert set(answered) == {404}, answered  # the origin has no such mounts
    def origin_connections(events) -> int:
        return sum(1 for e in events[mark:] if e["event"] == "client-connected")

    # gst-rtsp-server logs no request event for an unknown mount: count the connections proxyd opened
    # to it instead (one per player DESCRIBE); its event log is read by a thread, so wait for them.
    events = await asyncio.to_thread(shared_gst_origin.wait_until,
                                     lambda ev: origin_connections(ev) >= len(answered), 10)
    assert origin_connections(events) == len(answered)
