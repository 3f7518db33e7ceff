"""On-disk cache store: committed entries only, checksums, LRU quota, purge, change reports.

Layout under the cache directory:
    entries/<key>/meta.json   {"body": {...}, "sha256": <of the canonical body>}
    entries/<key>/media.rtp   records (see media.py); its SHA-256 is in the body
    tmp/                      entries being written; wiped at start (a crash mid-write leaves only this)
An entry becomes visible by one rename of its finished, fsynced directory into entries/. Meta
updates (freshness) are written to a temp file and renamed over meta.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from proxyd.cache.media import EntryMedia, MediaFormatError
from proxyd.log import get_logger
from proxyd.rtsp.uri import url_key, url_prefix_key

log = get_logger("cache.store")

META = "meta.json"
DATA = "media.rtp"


def entry_key(url: str) -> str:
    """Directory name of the entry for `url`: spellings of the same resource share it."""
    return hashlib.sha256(url_key(url).encode()).hexdigest()[:32]


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
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.emit = emit
        self.clock = clock
        self.entries: dict[str, Entry] = {}  # by url_key(url)
        self._tmp_counter = 0

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
                                                       size + (directory / META).stat().st_size,
                                                       last_used=(directory / META).stat().st_mtime)
        self.enforce_quota()
        log.info("cache: %d entries, %d bytes in %s", len(self.entries), self.total_bytes, self.root)
        return self

    def lookup(self, url: str) -> Entry | None:
        return self.entries.get(url_key(url))

    # --- writing ---
    def commit(self, body: dict, media: EntryMedia) -> Entry:
        """Write the entry to tmp/, fsync, rename into entries/ (replacing an older version)."""
        key = entry_key(body["url"])
        self._tmp_counter += 1
        work = self.root / "tmp" / f"{key}.{os.getpid()}.{self._tmp_counter}"
        work.mkdir()
        try:
            with open(work / DATA, "wb") as f:
                digest = media.encode_into(f.write)
                f.flush()
                os.fsync(f.fileno())
                data_bytes = f.tell()
            body = {**body, "data_sha256": digest, "data_bytes": data_bytes, "packets": len(media)}
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
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        entry = Entry(key, body, data_bytes + len(meta), last_used=self.clock())
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
    def read_media(self, entry: Entry) -> EntryMedia | None:
        """The entry's media, checksum verified; None when unreadable or corrupt (the caller purges).
        Touches no shared state, so it may run in a worker thread."""
        try:
            blob = (self.root / "entries" / entry.key / DATA).read_bytes()
            if hashlib.sha256(blob).hexdigest() != entry.body["data_sha256"]:
                raise MediaFormatError("checksum mismatch")
            streams = entry.body["streams"]
            key_streams = tuple(i for i, s in enumerate(streams) if s.get("key_frames"))
            return EntryMedia.decode(blob, len(streams), key_streams)
        except (OSError, MediaFormatError, KeyError) as exc:
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
