"""Persisted upper bound of the report seq numbers this node may have handed out.

Seq numbers are reserved in blocks: a batch never leaves memory (to the network or the spool)
before the reservation covering it is on disk, so a restart continues above every seq the
control plane can have seen, without a disk write per event.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from proxyd.control.files import atomic_write

log = logging.getLogger("proxyd.control.seqstate")


class SeqReservation:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.reserved = 0  # every seq below this may have been used

    def load(self) -> int:
        try:
            state = json.loads(self.path.read_bytes())
            value = state["seq_reserved"]
            if type(value) is not int or value < 0:
                raise ValueError(f"seq_reserved={value!r}")
        except FileNotFoundError:
            value = 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable report seq state %s (%s); continuing from the spool",
                        self.path, exc)
            value = 0
        self.reserved = value
        return value

    def reserve(self, upto: int) -> None:
        """Blocking: persist that seq numbers below `upto` may be used."""
        if upto <= self.reserved:
            return
        atomic_write(self.path, json.dumps({"seq_reserved": upto}).encode())
        self.reserved = upto
