"""The owner node dies while a node that does not own a URL takes it through it (issue #14 item 2):
three proxyd processes on 127.0.0.2-4, a GStreamer origin behind a byte-counting forwarder, ffmpeg
playing through a non-owner, the owner SIGKILLed mid-play. The player goes on to the end: a fill
resumes at the origin from where it stopped, a split reconnects to the next owner by the hashing
over the nodes left (or to the origin when that is the node itself)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json

import pytest

from proxyd.cache.media import EntryMedia
from tests.peers.origin import LiveOptions
from tests.proxyd.split.players import RecordingPlayer
from tests.proxyd.cache.cluster_nodes import owner_of, start_cluster, wait_until
from tests.proxyd.cache.helpers import wait_for_log

pytestmark = pytest.mark.peers


def kill(node) -> None:
    node.proc.kill()
    node.proc.wait(10)


def video_times(cache_dir) -> list[int]:
    """The distinct media times (us) of the video frames in the one entry committed in `cache_dir`."""
    [entry] = (cache_dir / "entries").iterdir()
    streams = json.loads((entry / "meta.json").read_text())["body"]["streams"]
    media = EntryMedia.decode((entry / "media.rtp").read_bytes(), len(streams), ())
    video = next(i for i, s in enumerate(streams) if s["clock_rate"] == 90000)
    return sorted({media.times[i] for i in range(len(media)) if media.streams[i] == video})


def test_owner_killed_mid_fill_the_players_go_on(gst_origin, counted_origin, test_clips, proxyd_process,
                                                 peer_players, tmp_path):
    origin_url = counted_origin.url("long")
    nodes = start_cluster(proxyd_process, counted_origin.url("/"), tmp_path, killed_owner_of=origin_url)
    owner = owner_of(nodes, origin_url)
    node = next(p for a, p in nodes.items() if a != owner)
    clip_bytes = test_clips.long.path.stat().st_size
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        playing = pool.submit(peer_players.ffmpeg_play, node.url("/vod/long"), transport="tcp", decode=False,
                              timeout=40)
        wait_for_log(node.log_path, rf"cache: filling {origin_url} .* from {owner}$")
        wait_until(lambda: counted_origin.bytes_down > clip_bytes / 3, "a third of the clip left the origin")
        kill(nodes[owner])
        played = playing.result()
    # the whole clip (at most a frame lost where the two sessions meet), not the part before the kill
    assert played.ok and played.video_frames >= test_clips.long.spec.video_frames - 1, played.describe()
    wait_for_log(node.log_path, rf"cache: fill of {origin_url} lost its source .*; resuming at npt=")
    wait_for_log(node.log_path, rf"cache: filling {origin_url} .* from 127.0.0.1:{counted_origin.port} at npt=")
    wait_for_log(node.log_path, rf"cache: committed {origin_url} ")
    # the copy holds every frame once on one timeline (the resumed part placed where it belongs)
    spec = test_clips.long.spec
    times = video_times(node.cache_dir)
    frame_us = 1_000_000 // spec.fps
    assert spec.video_frames - 1 <= len(times) <= spec.video_frames, times
    assert times[-1] < spec.duration_s * 1_000_000 and max(b - a for a, b in zip(times, times[1:])) <= 2 * frame_us
    # the copy it committed is whole: the next player is served from it, the origin not asked
    describes = len(gst_origin.requests("DESCRIBE"))
    again = peer_players.ffmpeg_play(node.url("/vod/long"), transport="tcp", decode=False)
    assert again.ok and again.video_frames >= test_clips.long.spec.video_frames - 1, again.describe()
    assert len(gst_origin.requests("DESCRIBE")) == describes


async def wait_video_frames(player: RecordingPlayer, count: int, timeout: float = 30.0) -> None:
    """Until the player got video (channel 0) of `count` frames (distinct RTP timestamps)."""
    async with asyncio.timeout(timeout):
        while len({p[4:8] for p in player.packets.get(0, ())}) < count:
            player.packet_seen.clear()
            await player.packet_seen.wait()


async def test_owner_killed_mid_split_the_players_go_on(gst_origin, counted_origin, proxyd_process, tmp_path):
    """Live (--live on every node): both non-owners split through the owner, which splits it from
    the origin. The owner killed, the URL's next owner reconnects to the origin and the third node
    through it: the players' RTP goes on, one stream each (one SSRC, sequence numbers without a
    gap), and the cluster opens one new origin session."""
    origin_url = counted_origin.url("live")
    nodes = start_cluster(proxyd_process, counted_origin.url("/"), tmp_path, "--live", "/vod/live",
                          killed_owner_of=origin_url)
    owner = owner_of(nodes, origin_url)
    next_owner = owner_of([a for a in nodes if a != owner], origin_url)
    third = next(a for a in nodes if a not in (owner, next_owner))
    players = {}
    for address in (next_owner, third):
        players[address] = await RecordingPlayer.connect(nodes[address].host, nodes[address].port)
        await players[address].play_tcp(nodes[address].url("/vod/live"))
    fps = LiveOptions().fps
    for player in players.values():
        await wait_video_frames(player, 2 * fps)  # two seconds of video
    for address in (owner, next_owner, third):
        wait_for_log(nodes[address].log_path, rf"split {origin_url} started")
    # one DESCRIBE and one session at the origin for three nodes (its events arrive asynchronously)
    gst_origin.wait_until(lambda events: any(e["event"] == "session-created" for e in events))
    assert len(gst_origin.requests("DESCRIBE")) == 1 and gst_origin.session_count("/live") == 1
    mark = gst_origin.mark()
    kill(nodes[owner])
    for player in players.values():
        await wait_video_frames(player, 5 * fps)  # and three more after the kill

    wait_for_log(nodes[next_owner].log_path, rf"split {origin_url} reconnecting through the origin")
    wait_for_log(nodes[third].log_path, rf"split {origin_url} reconnecting through {next_owner}")
    gst_origin.wait_until(lambda events: any(e["event"] == "session-created" for e in events[mark:]))
    assert gst_origin.session_count("/live", after=mark) == 1
    for address, player in players.items():
        video = player.packets[0]
        assert len({p[8:12] for p in video}) == 1, address  # one SSRC
        seqs = [int.from_bytes(p[2:4], "big") for p in video]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:])), address
        player.writer.close()
