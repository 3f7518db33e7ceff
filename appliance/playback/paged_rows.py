"""Report rows read from SQL a page at a time (roll-up reports and raw reports alike)."""
from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings


class PagedRows(Sequence):
    """A report's rows, ranked and sliced in SQL: `_fetch(start, stop)` returns those rows and sets `_total`
    (the number of rows) when it has read any. The first read (len(), a paginator's count) fetches
    APPLIANCE_REPORT_PREFETCH_ROWS rows: the pages a client usually reads, without another statement.
    `_finished(rows)` completes the rows actually served (a slice), not the whole prefetch: what costs per
    row (a distinct-player count) is paid for the page of 50, not for the 500 rows read ahead."""

    def __init__(self) -> None:
        self._total: int | None = None
        self._prefix: list[dict] = []

    def _fetch(self, start: int, stop: int) -> list[dict]:
        raise NotImplementedError

    def _finished(self, rows: list[dict]) -> list[dict]:
        return rows

    def __len__(self) -> int:
        if self._total is None:
            self._prefix = self._fetch(0, settings.APPLIANCE_REPORT_PREFETCH_ROWS)
        return self._total

    def __getitem__(self, index):
        if isinstance(index, int):
            index = range(len(self))[index]
            return self[index:index + 1][0]
        start, stop, step = index.indices(len(self))
        if stop <= len(self._prefix):
            return self._finished(self._prefix[start:stop:step])
        return self._finished(self._fetch(start, stop)[::step])

    def __iter__(self):
        return iter(self[:])  # one read, not one per row

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, PagedRows)) else NotImplemented

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} rows>"
