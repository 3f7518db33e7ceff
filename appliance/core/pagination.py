"""A paginator whose count stops at a cap: an exact COUNT(*) over millions of play logs costs more
than the page itself, and nobody pages past the first thousands of rows (filters narrow them)."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """`count` is exact up to `count_cap` rows; beyond it `count` is the cap and `count_capped` is
    true, so pages after the cap cannot be reached (narrow the filters or change the ordering)."""

    def __init__(self, object_list, per_page, *, count_cap: int, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.count_cap = count_cap

    @cached_property
    def rows_counted(self) -> int:
        """Rows counted, at most one past the cap (one COUNT over a LIMIT subquery)."""
        rows = self.object_list
        if isinstance(rows, QuerySet):
            # no ORDER BY in the count: with one, a LIMIT lets the planner walk the ordering's index
            # looking for rare matches instead of using the filter's index (1 s vs 30 ms at 1M rows)
            return rows.order_by()[: self.count_cap + 1].count()
        return len(rows[: self.count_cap + 1])

    @cached_property
    def count(self) -> int:
        return min(self.rows_counted, self.count_cap)

    @property
    def count_capped(self) -> bool:
        return self.rows_counted > self.count_cap
