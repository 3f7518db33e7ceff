"""CacheStore and EntryMedia without the network: commit/reopen, corruption, purge, LRU quota."""

from __future__ import annotations

import ctypes
import gc
import json
import random
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

from proxyd.cache.media import FLAG_KEY, EntryMedia, MediaFormatError
from proxyd.cache.store import CacheStore, entry_key


def rtp(seq: int, payload: bytes) -> bytes:
    return bytes([0x80, 96, seq >> 8, seq & 0xFF, 0, 0, 0, seq, 1, 2, 3, 4]) + payload


def media(packets: int = 10, size: int = 100) -> EntryMedia:
    m = EntryMedia(2, (0,))
    for i in range(packets):
        m.append(i % 2, rtp(i, bytes([i]) * size), i * 40_000, key=(i % 4 == 0))
    m.finish()
    return m


def body(url: str) -> dict:
    return {"url": url, "sdp": "v=0\r\n", "expires_at": 0, "streams": [
        {"control": url + "/s0", "clock_rate": 90000, "key_frames": True, "rtptime0": 0},
        {"control": url + "/s1", "clock_rate": 8000, "key_frames": False, "rtptime0": 0}]}


@pytest.fixture
def events():
    return []


@pytest.fixture
def store(tmp_path, events):
    return CacheStore(tmp_path, max_bytes=1 << 20, emit=lambda kind, data: events.append((kind, data))).open()


def test_commit_survives_reopen_and_reads_back(tmp_path, store, events):
    store.commit(body("rtsp://o/a"), media())
    again = CacheStore(tmp_path, max_bytes=1 << 20).open()
    entry = again.lookup("rtsp://o/a")
    loaded = again.read_media(entry)
    assert [bytes(p) for p in loaded.packets] == [bytes(p) for p in media().packets]
    assert list(loaded.times) == list(media().times) and loaded.finished
    assert events[-1][1]["state"] == "complete" and events[-1][1]["size_bytes"] == entry.size_bytes


def test_corrupt_data_is_not_served(tmp_path, store):
    entry = store.commit(body("rtsp://o/a"), media())
    data = tmp_path / "entries" / entry.key / "media.rtp"
    raw = bytearray(data.read_bytes())
    raw[20] ^= 0xFF
    data.write_bytes(raw)
    assert store.read_media(entry) is None


def test_tampered_or_partial_meta_is_dropped_at_open(tmp_path, store):
    entry = store.commit(body("rtsp://o/a"), media())
    meta = tmp_path / "entries" / entry.key / "meta.json"
    doc = json.loads(meta.read_text())
    doc["body"]["expires_at"] = 10**12
    meta.write_text(json.dumps(doc))
    (tmp_path / "tmp" / "leftover").mkdir()
    again = CacheStore(tmp_path, max_bytes=1 << 20).open()
    assert again.lookup("rtsp://o/a") is None
    assert not (tmp_path / "entries" / entry.key).exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_purge_by_url_and_prefix(store, events):
    for path in ("a/1", "a/2", "b/1"):
        store.commit(body(f"rtsp://o/{path}"), media())
    assert store.purge(url="rtsp://o/b/1") == ["rtsp://o/b/1"]
    assert sorted(store.purge(prefix="rtsp://o/a/")) == ["rtsp://o/a/1", "rtsp://o/a/2"]
    assert store.entries == {}
    assert [d["state"] for k, d in events[-3:]] == ["purged"] * 3


def test_spellings_of_one_url_share_one_entry(tmp_path, store, events):
    """Keys are proxyd.rtsp.uri.url_key: default port, host case, trailing "/" do not matter."""
    first = store.commit(body("rtsp://o:554/clip"), media())
    assert store.lookup("rtsp://O/clip/") is first
    again = store.commit(body("rtsp://o/clip"), media())  # replaces it, one directory
    assert [p.name for p in (tmp_path / "entries").iterdir()] == [again.key] == [first.key]
    assert CacheStore(tmp_path, max_bytes=1 << 20).open().lookup("rtsp://o:554/clip/") is not None
    assert events[-1][1]["url"] == "rtsp://o/clip"  # reports carry the normal form
    assert store.purge(prefix="rtsp://O:554/") == ["rtsp://o/clip"]
    store.commit(body("rtsp://o:554/vod/a"), media())
    store.commit(body("rtsp://o/vodka"), media())
    assert store.purge(prefix="rtsp://o:554/vod/") == ["rtsp://o:554/vod/a"]  # a "/" boundary kept
    assert store.purge(url="rtsp://o/vodka/") == ["rtsp://o/vodka"]


def test_quota_evicts_least_recently_used_but_not_in_use(tmp_path, events):
    clock = iter(range(100))
    store = CacheStore(tmp_path, max_bytes=1 << 20, emit=lambda k, d: events.append(d),
                       clock=lambda: next(clock)).open()
    a = store.commit(body("rtsp://o/a"), media())
    store.max_bytes = int(2.5 * a.size_bytes)
    store.commit(body("rtsp://o/b"), media())
    store.acquire(a)  # in use, and now the most recently used anyway
    store.commit(body("rtsp://o/c"), media())
    assert sorted(store.entries) == ["rtsp://o/a", "rtsp://o/c"]
    assert store.total_bytes <= store.max_bytes
    assert entry_key("rtsp://o/b") not in {p.name for p in (tmp_path / "entries").iterdir()}


def test_truncated_records_are_rejected():
    chunks = []
    media().encode_into(chunks.append)
    blob = b"".join(chunks)
    with pytest.raises(MediaFormatError):
        EntryMedia.decode(blob[:-5], 2, (0,))


def test_seek_index_goes_to_preceding_key_frame():
    m = media(packets=12)
    # key frames on stream 0 at packets 0, 4, 8 (times 0, 160 ms, 320 ms)
    assert m.seek_index(200_000) == 4
    assert m.seek_index(320_000) == 8
    assert m.seek_index(0) == 0


def test_seek_index_with_b_frames_and_multi_packet_key_frames_matches_the_definition():
    """Media times out of order (B-frames), key frames of several packets, audio in between, a key
    frame earlier than the previous one: the bisected index finds what a scan of the packets would."""
    rng = random.Random(12)
    with_keys, without_keys = EntryMedia(2, (0,)), EntryMedia(2)
    for frame in range(300):
        t = frame * 40_000 + rng.choice((0, 80_000, -40_000))  # presentation order differs from arrival
        if frame == 150:
            t = 1_000_000  # a key frame at a time before the previous ones
        for piece in range(rng.randint(1, 3)):
            for media in (with_keys, without_keys):
                media.append(0, bytes(20), t, key=frame % 12 == 0 or frame == 150)
        for media in (with_keys, without_keys):
            media.append(1, bytes(14), frame * 40_000 + 5_000, key=False)

    def by_scan(media, position):
        keys = [(t, i) for i, t in enumerate(media.times)
                if t <= position and media.streams[i] == 0 and media.flags[i] & FLAG_KEY]
        if media.key_streams:
            return min(keys, key=lambda k: (-k[0], k[1]))[1] if keys else 0
        return next((i for i, t in enumerate(media.times) if t >= position), len(media))

    for position in [0, 1, 39_999, 1_000_000, 12_000_000, 20_000_000] + [rng.randrange(13_000_000) for _ in range(200)]:
        assert with_keys.seek_index(position) == by_scan(with_keys, position), position
        assert without_keys.seek_index(position) == by_scan(without_keys, position), position


def test_stale_is_reported_once_until_freshness_is_renewed(store, events):
    entry = store.commit(body("rtsp://o/a"), media())
    store.mark_stale(entry)
    store.mark_stale(entry)  # a second player finding it expired: no second report
    store.update(entry, expires_at=10.0)
    store.report(entry, "complete")
    store.mark_stale(entry)
    assert [d["state"] for k, d in events if k == "cache.changed"] == ["complete", "stale", "complete", "stale"]
    store.purge(url="rtsp://o/a")
    store.mark_stale(entry)  # gone from the store: nothing to report
    assert [d["state"] for k, d in events][-1] == "purged"


def test_a_playlist_is_committed_and_read_back_entry_by_entry(tmp_path, store):
    second = {**body("rtsp://o/pl"), "gen_id": 7}
    entry = store.commit({**body("rtsp://o/pl"), "playlist": [second]}, [media(10), media(6, size=50)])
    again = CacheStore(tmp_path, max_bytes=1 << 20).open()
    reopened = again.lookup("rtsp://o/pl")
    assert reopened.size_bytes == entry.size_bytes  # every entry's media counts toward the quota
    assert reopened.body["playlist"][0]["gen_id"] == 7 and reopened.body["playlist"][0]["packets"] == 6
    assert [bytes(p) for p in again.read_media(reopened, 1).packets] == [bytes(p) for p in media(6, size=50).packets]
    assert len(again.read_media(reopened, 0)) == 10
    (tmp_path / "entries" / reopened.key / "media.1.rtp").write_bytes(b"\x00" * 64)
    assert again.read_media(reopened, 1) is None  # checksum per entry: the caller purges the whole playlist
def test_readers_of_an_entry_in_use_share_one_loaded_media(tmp_path, store):
    entry = store.commit(body("rtsp://o/a"), media(packets=200, size=1000))
    with ThreadPoolExecutor(max_workers=8) as pool:  # players arriving together
        loaded = list(pool.map(lambda _: store.read_media(entry), range(8)))
    assert all(m is loaded[0] for m in loaded)
    assert store.read_media(entry) is loaded[0]  # a later player of the same entry, while in use
    first_packet = ctypes.string_at(loaded[0].addresses[0], len(loaded[0].packets[0]))
    assert first_packet == bytes(loaded[0].packets[0]) == rtp(0, bytes([0]) * 1000)
    del loaded, first_packet
    gc.collect()
    data = tmp_path / "entries" / entry.key / "media.rtp"
    data.write_bytes(data.read_bytes()[:-1])  # out of use: the next reader reads (and checks) the file
    assert store.read_media(entry) is None


def test_recently_read_media_stay_loaded_within_the_keep_budget(tmp_path):
    store = CacheStore(tmp_path, max_bytes=1 << 20, media_keep_bytes=250_000).open()
    a = store.commit(body("rtsp://o/a"), media(packets=100, size=1000))  # 100 KB of packets each
    b = store.commit(body("rtsp://o/b"), media(packets=100, size=1000))
    c = store.commit(body("rtsp://o/c"), media(packets=100, size=1000))
    first_a = weakref.ref(store.read_media(a))  # the caller keeps no reference: its last player left
    gc.collect()
    assert first_a() is not None and store.read_media(a) is first_a()  # not read and decoded again
    data = tmp_path / "entries" / a.key / "media.rtp"
    data.write_bytes(data.read_bytes()[:-1])  # a change on disk is not seen while it stays loaded
    assert store.read_media(a) is not None
    store.read_media(b)
    store.read_media(c)  # 300 KB read: the least recently read (a) is dropped
    gc.collect()
    assert store.read_media(a) is None  # read from the file again (now corrupt)
    assert store.read_media(c) is not None
