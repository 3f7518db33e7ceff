"""On-disk cache store: committed entries only, checksums, LRU quota, purge, change reports.

Layout under the cache directory:
    entries/<key>/meta.json   {"body": {...}, "sha256": <of the canonical body>}
    entries/<key>/media.rtp   records (see media.py); its SHA-256 is in the body
    entries/<key>/media.N.rtp a server-side playlist's entry N (N >= 1), described by body["playlist"][N-1]
    tmp/                      entries being written; wiped at start (a crash mid-write leaves only this)
An entry becomes visible by one rename of its finished, fsynced directory into entries/. Meta
updates (freshness) are written to a temp file and renamed over meta.json.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from proxyd.cache.media import EntryMedia, MediaFormatError
from proxyd.log import get_logger
from proxyd.rtsp.uri import url_key, url_prefix_key

log = get_logger("cache.store")

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a commit failing with these: the operator must act

META = "meta.json"
DATA = "media.rtp"


def entry_key(url: str) -> str:
    """Directory name of the entry for `url`: spellings of the same resource share it."""
    return hashlib.sha256(url_key(url).encode()).hexdigest()[:32]


def media_file(item: int) -> str:
    return DATA if item == 0 else f"media.{item}.rtp"


def _write_media(path: Path, media: EntryMedia) -> tuple[str, int]:
    with open(path, "wb") as f:
        digest = media.encode_into(f.write)
        f.flush()
        os.fsync(f.fileno())
        return digest, f.tell()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta_bytes(body: dict) -> bytes:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return json.dumps({"body": body, "sha256": hashlib.sha256(canonical.encode()).hexdigest()}).encode()


def _read_meta(path: Path) -> dict | None:
    try:
        outer = json.loads(path.read_bytes())
        body = outer["body"]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        if hashlib.sha256(canonical.encode()).hexdigest() != outer["sha256"]:
            return None
        return body if isinstance(body, dict) and isinstance(body.get("url"), str) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclasses.dataclass
class Entry:
    """A committed entry. `body` is the stored metadata (url, sdp, headers, streams, freshness...)."""

    key: str
    body: dict
    size_bytes: int
    last_used: float
    users: int = 0  # replays holding its media in memory; quota eviction waits for them
    hits: int = 0
    bytes_served: int = 0
    stale_reported: bool = False  # `stale` sent since the last commit or freshness update

    @property
    def url(self) -> str:
        return self.body["url"]

    @property
    def url_key(self) -> str:
        return url_key(self.body["url"])

    @property
    def expires_at(self) -> float:
        return float(self.body.get("expires_at", 0))

    def fresh(self, now: float) -> bool:
        return now < self.expires_at


class CacheStore:
    def __init__(self, root: str | os.PathLike, *, max_bytes: int,
                 emit: Callable[[str, dict], None] = lambda kind, data: None,
                 clock: Callable[[], float] = time.time, media_keep_bytes: int = 0) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.emit = emit
        self.clock = clock
        self.entries: dict[str, Entry] = {}  # by url_key(url)
        self._tmp_counter = 0
        self.disk_full = False  # the last commit failed for want of space (cleared by the next success)
        self.disk_full_fills = 0  # commits refused by a full filesystem (or quota), since start
        # Media in use stays shared: players arriving together or while others replay get the same
        # loaded bytes instead of each reading, checking and decoding the file again.
        self._media: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # (key, sha256) -> media
        self._media_locks: dict[tuple, threading.Lock] = {}
        self._media_locks_guard = threading.Lock()
        # ... and the most recently read media stay loaded after their last player, up to this many
        # bytes: the next player of a popular entry skips the read, checksum and decode.
        self.media_keep_bytes = media_keep_bytes
        self._kept: OrderedDict[tuple, EntryMedia] = OrderedDict()  # least recently read first

    @property
    def total_bytes(self) -> int:
        return sum(e.size_bytes for e in self.entries.values())

    def open(self) -> CacheStore:
        """Create the layout, drop leftovers of interrupted writes, index the committed entries."""
        (self.root / "entries").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.root / "tmp", ignore_errors=True)
        (self.root / "tmp").mkdir()
        for directory in sorted((self.root / "entries").iterdir()):
            body = _read_meta(directory / META)
            data = directory / DATA
            try:
                size = data.stat().st_size
            except OSError:
                size = -1
            if body is None or size != body.get("data_bytes") or directory.name != entry_key(body["url"]):
                log.warning("cache: dropping unreadable entry %s", directory.name)
                shutil.rmtree(directory, ignore_errors=True)
                continue
            self.entries[url_key(body["url"])] = Entry(directory.name, body,
                                                       size + (directory / META).stat().st_size
                                                       + sum(m.get("data_bytes", 0) for m in body.get("playlist", [])),
                                                       last_used=(directory / META).stat().st_mtime)
        self.enforce_quota()
        log.info("cache: %d entries, %d bytes in %s", len(self.entries), self.total_bytes, self.root)
        return self

    def lookup(self, url: str) -> Entry | None:
        return self.entries.get(url_key(url))

    # --- writing ---
    def commit(self, body: dict, media: EntryMedia | list[EntryMedia]) -> Entry:
        """Write the entry to tmp/, fsync, rename into entries/ (replacing an older version). A
        server-side playlist passes one media per entry, the later ones described by body["playlist"]."""
        medias = media if isinstance(media, list) else [media]
        key = entry_key(body["url"])
        self._tmp_counter += 1
        work = self.root / "tmp" / f"{key}.{os.getpid()}.{self._tmp_counter}"
        work.mkdir()
        try:
            digest, data_bytes = _write_media(work / DATA, medias[0])
            more = []
            for item, (extra, media_n) in enumerate(zip(body.get("playlist", []), medias[1:]), 1):
                sha, size = _write_media(work / media_file(item), media_n)
                more.append({**extra, "data_sha256": sha, "data_bytes": size, "packets": len(media_n)})
            body = {**body, "data_sha256": digest, "data_bytes": data_bytes, "packets": len(medias[0])}
            if more:
                body["playlist"] = more
            meta = _meta_bytes(body)
            with open(work / META, "wb") as f:
                f.write(meta)
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(work)
            old = self.entries.pop(url_key(body["url"]), None)
            final = self.root / "entries" / key
            if final.exists():  # the previous version goes away first: never a mixed directory
                trash = self.root / "tmp" / f"{key}.old.{self._tmp_counter}"
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(work, final)
            _fsync_dir(final.parent)
        except BaseException as exc:
            shutil.rmtree(work, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                self.disk_full = True
                self.disk_full_fills += 1
            raise
        self.disk_full = False
        size = data_bytes + sum(m["data_bytes"] for m in body.get("playlist", [])) + len(meta)
        entry = Entry(key, body, size, last_used=self.clock())
        if old is not None:
            entry.hits, entry.bytes_served = old.hits, old.bytes_served
        self.entries[entry.url_key] = entry
        self.report(entry, "complete")
        self.enforce_quota()
        return entry

    def update(self, entry: Entry, **changes) -> None:
        """Rewrite the entry's metadata (e.g. a new expires_at after revalidation), atomically."""
        body = {**entry.body, **changes}
        directory = self.root / "entries" / entry.key
        tmp = directory / (META + ".new")
        with open(tmp, "wb") as f:
            f.write(_meta_bytes(body))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / META)
        _fsync_dir(directory)
        entry.body = body
        entry.stale_reported = False

    def mark_stale(self, entry: Entry) -> None:
        """Report `stale` once when an entry is found expired (before it is revalidated)."""
        if not entry.stale_reported and self.entries.get(entry.url_key) is entry:
            entry.stale_reported = True
            self.report(entry, "stale")

    # --- reading ---
    def read_media(self, entry: Entry, item: int = 0) -> EntryMedia | None:
        """The entry's media (a playlist's entry `item`), checksum verified; None when unreadable or
        corrupt (the caller purges). Thread-safe (runs in worker threads): concurrent and later readers
        of the same entry version share one EntryMedia while it is in use."""
        playlist = entry.body.get("playlist") or []
        described = entry.body if item == 0 else playlist[item - 1] if item <= len(playlist) else {}
        version = (entry.key, item, described.get("data_sha256"))
        with self._media_locks_guard:
            lock = self._media_locks.setdefault(version, threading.Lock())
        with lock:
            media = self._media.get(version)
            if media is None:
                media = self._load_media(entry, item)
                if media is not None:
                    self._media[version] = media
        with self._media_locks_guard:
            if self._media_locks.get(version) is lock and not lock.locked():
                del self._media_locks[version]
            if media is not None:
                self._keep(version, media)
        return media

    def _keep(self, version: tuple, media: EntryMedia) -> None:
        """Hold `media` as the most recently read, dropping the least recent beyond the budget."""
        kept = self._kept
        kept.pop(version, None)
        if media.bytes > self.media_keep_bytes:
            return
        kept[version] = media
        total = sum(m.bytes for m in kept.values())
        while total > self.media_keep_bytes:
            _version, dropped = kept.popitem(last=False)
            total -= dropped.bytes

    def _load_media(self, entry: Entry, item: int) -> EntryMedia | None:
        try:
            described = entry.body if item == 0 else entry.body["playlist"][item - 1]
            blob = (self.root / "entries" / entry.key / media_file(item)).read_bytes()
            if hashlib.sha256(blob).hexdigest() != described["data_sha256"]:
                raise MediaFormatError("checksum mismatch")
            streams = described["streams"]
            key_streams = tuple(i for i, s in enumerate(streams) if s.get("key_frames"))
            return EntryMedia.decode(blob, len(streams), key_streams)
        except (OSError, MediaFormatError, KeyError, IndexError) as exc:
            log.warning("cache: entry for %s is unreadable (%s)", entry.url, exc)
            return None

    def acquire(self, entry: Entry) -> None:
        entry.users += 1
        entry.hits += 1
        entry.last_used = self.clock()

    def release(self, entry: Entry, bytes_served: int = 0) -> None:
        entry.users -= 1
        entry.bytes_served += bytes_served
        entry.last_used = self.clock()
        if self.entries.get(entry.url_key) is entry:
            self._touch(entry)
            self.enforce_quota()

    def _touch(self, entry: Entry) -> None:
        try:
            os.utime(self.root / "entries" / entry.key / META)
        except OSError:
            pass

    # --- removal ---
    def purge(self, url: str | None = None, prefix: str | None = None) -> list[str]:
        """Remove the entry for `url` and/or every entry whose URL starts with `prefix` (both in normal
        form, proxyd.rtsp.uri); returns the entries' URLs. Replays already running keep their
        in-memory copy; new players no longer get it."""
        def purged(entry: Entry) -> bool:
            if url is not None and entry.url_key == url_key(url):
                return True
            return prefix is not None and entry.url_key.startswith(url_prefix_key(prefix))

        gone = [entry for entry in self.entries.values() if purged(entry)]
        for entry in gone:
            self._delete(entry, "purged")
        return [entry.url for entry in gone]

    def enforce_quota(self) -> None:
        """Evict least recently used entries until the store fits max_bytes; entries in use are skipped
        (evicted when their last player releases them)."""
        total = self.total_bytes
        for entry in sorted(self.entries.values(), key=lambda e: e.last_used):
            if total <= self.max_bytes:
                break
            if entry.users > 0:
                continue
            total -= entry.size_bytes
            log.info("cache: evicting %s (%d bytes) to stay under %d", entry.url, entry.size_bytes,
                     self.max_bytes)
            self._delete(entry, "purged")

    def _delete(self, entry: Entry, state: str) -> None:
        if self.entries.get(entry.url_key) is not entry:
            return
        del self.entries[entry.url_key]
        self.report(entry, state)
        directory = self.root / "entries" / entry.key
        if directory.exists():
            self._tmp_counter += 1
            trash = self.root / "tmp" / f"{entry.key}.gone.{self._tmp_counter}"
            try:
                os.rename(directory, trash)  # invisible at once, even if the rmtree is interrupted
            except OSError:
                return
            shutil.rmtree(trash, ignore_errors=True)

    # --- reports ---
    def report(self, entry: Entry | None, state: str, body: dict | None = None) -> None:
        """cache.changed in the contract's shape (docs/architecture.md)."""
        b = entry.body if entry is not None else (body or {})
        self.emit("cache.changed", {
            "url": url_key(b["url"]) if b.get("url") else "", "state": state, "sdp": b.get("sdp", ""),
            "cache_control": b.get("cache_control") or "", "last_modified": b.get("last_modified"),
            "etag": b.get("etag"), "content_size": b.get("content_size"),
            "size_bytes": entry.size_bytes if entry is not None else 0,
            "fetched_at": _iso(b.get("fetched_at")), "expires_at": _iso(b.get("expires_at")),
            "hits": entry.hits if entry is not None else 0,
            "bytes_served": entry.bytes_served if entry is not None else 0,
        })


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
