"""SendEvent delivery by a proxyd that runs alone ([MS-RTSP] 2.2.7.11, 3.1.4.9).

With a control plane, subscribed events go up as `sendevent` reports and its uplink task sends
them. Without one (no --control-url) this report sink sends them itself, so never both. Each
subscribed event is appended to a disk spool (proxyd.control.spool) before it is sent, in order,
on a connection of its own to the event's origin; a 2xx (or a 4xx: the origin refuses the event
itself, retrying cannot help) is recorded in a fsynced ledger of delivered ids, so an event is sent
again after a restart only if proxyd died between the origin's answer and that fsync. A spool
segment is removed once every event in it is delivered. Other reports are dropped, as with no sink.
An origin's 401 is answered with the credentials of the route that covers the event's URL
(Router.credentials_for: --origin-credentials-file), Basic or Digest as the origin asks; refused
credentials are a 4xx like any other (logged by the origin client, the event dropped).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from proxyd.control.files import ensure_private_dir, fsync_dir
from proxyd.control.reports import Batch
from proxyd.control.spool import Spool
from proxyd.log import get_logger
from proxyd.origin.client import OriginConnector, OriginError
from proxyd.rtsp.errors import RtspError
from proxyd.rtsp.auth import Credentials
from proxyd.rtsp.events import Headers
from proxyd.wm.classify import CT_SEND_EVENT

log = get_logger("wmext.sendevent")

LEDGER = "delivered.ids"
SEGMENT_MAX_BYTES = 1 << 20
MAX_SEGMENTS = 10_000


class DeliveredLedger:
    """Ids of spooled events the origin has taken (one per line, fsynced per append)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.ids = set(path.read_text().split())
        except FileNotFoundError:
            self.ids = set()

    def add(self, event_id: str) -> None:
        with open(self.path, "a") as f:
            f.write(event_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.ids.add(event_id)

    def forget(self, event_ids) -> None:
        """After their segment is gone: rewrite the ledger without them (write, fsync, rename)."""
        self.ids -= set(event_ids)
        tmp = self.path.with_suffix(".new")
        with open(tmp, "w") as f:
            f.write("".join(i + "\n" for i in sorted(self.ids)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)


class OriginEventSender:
    """A ReportSink for a standalone proxyd; `start()` on the event loop, `stop()` at shutdown."""

    def __init__(self, directory: str | os.PathLike, connector: OriginConnector, *, max_bytes: int,
                 retry_interval: float, credentials_for: Callable[[str], Credentials | None]) -> None:
        self.directory = ensure_private_dir(Path(directory))
        self.connector = connector
        self.credentials_for = credentials_for  # origin URL -> the covering route's credentials
        self.retry_interval = retry_interval
        self.spool = Spool(self.directory, max_bytes=max_bytes, max_segments=MAX_SEGMENTS,
                           segment_max_bytes=SEGMENT_MAX_BYTES, dead_letter_max_bytes=max_bytes)
        self.ledger = DeliveredLedger(self.directory / LEDGER)
        self.seq = self.spool.max_seq() or 0
        self.unwritten: list[Batch] = []  # emitted on the loop, written by the sender task
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.sent = 0

    # --- ReportSink ---
    def emit(self, kind: str, data: dict) -> None:
        if kind != "sendevent" or not data.get("subscribed"):
            return
        self.seq += 1
        line = json.dumps({"id": uuid.uuid4().hex, "seq": self.seq, "url": data["origin_url"],
                           "body": data["body"]}).encode()
        self.unwritten.append(Batch((line,), self.seq, self.seq))
        self.wake.set()

    # --- lifecycle ---
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await asyncio.to_thread(self.write_unwritten)  # spooled: sent after the next start

    def write_unwritten(self) -> None:
        batches, self.unwritten = self.unwritten, []
        for batch in batches:
            self.spool.append(batch)

    # --- delivery ---
    async def run(self) -> None:
        drained = False  # a segment was removed since the spool was last seen empty
        while True:
            self.wake.clear()
            await asyncio.to_thread(self.write_unwritten)
            segment = await asyncio.to_thread(self.spool.load_oldest)
            if segment is None:
                if drained:
                    log.info("sendevent: spool empty, %d events delivered since start", self.sent)
                    drained = False
                if not self.unwritten:
                    await self.wake.wait()
                continue
            events = [json.loads(line) for line in segment.lines]
            for event in events:
                if event["id"] in self.ledger.ids:
                    continue
                if not await self.send(event):
                    break
                await asyncio.to_thread(self.ledger.add, event["id"])
            else:
                await asyncio.to_thread(self.spool.remove, segment.name)
                await asyncio.to_thread(self.ledger.forget, [e["id"] for e in events])
                drained = True
                continue
            await asyncio.sleep(self.retry_interval)  # the origin is down: try again later

    async def send(self, event: dict) -> bool:
        """True when the event needs no further attempt (taken, or refused for good)."""
        url = event["url"]
        try:
            client = await self.connector.connect_url(url, self.credentials_for(url))
        except RtspError as exc:
            log.warning("sendevent: %r is not an origin URL (%s); dropped", url[:200], exc)
            return True
        except OriginError as exc:
            log.warning("sendevent: origin for %s unreachable (%s); retrying in %.0fs", url, exc.detail,
                        self.retry_interval)
            return False
        try:
            resp = await client.request("SET_PARAMETER", url, Headers([("Content-Type", CT_SEND_EVENT)]),
                                        event["body"].encode("utf-8"))
        except OriginError as exc:
            log.warning("sendevent: %s not answered (%s); retrying in %.0fs", url, exc.detail, self.retry_interval)
            return False
        finally:
            client.close()
        if 200 <= resp.status < 300:
            self.sent += 1
            log.info("sendevent: delivered event %s to %s", event["id"], url)
            return True
        if 400 <= resp.status < 500:
            log.warning("sendevent: origin refused the event for %s with %d; dropped", url, resp.status)
            return True
        log.warning("sendevent: origin answered %d for %s; retrying in %.0fs", resp.status, url,
                    self.retry_interval)
        return False
