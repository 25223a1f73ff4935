"""Newest-first keyset pages: by pk, or by (time, pk) when a list has a time range.

A page reads below the last row of the previous page, named by its pk alone. Ordered by
(time, pk), the time range is a slice of a (time, pk) index, where ordered by pk it would be a
filter over every newer row; the cursor row's time is looked up by its primary key, so the
cursor a caller holds is the same plain pk either way. Both orders are of immutable columns,
so every row committed before a listing's first page appears in it exactly once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["newest_first"]


def newest_first(q: Select[Any], pk: ColumnElement[Any], at: ColumnElement[Any], *,
                 timed: bool, before: int | None) -> Select[Any]:
    """Order ``q`` newest first by ``pk``, or by (``at``, ``pk``) when ``timed``, and keep the
    rows after the one whose pk is ``before`` in that order."""
    if not timed:
        q = q.order_by(pk.desc())
        return q.where(pk < before) if before is not None else q
    q = q.order_by(at.desc(), pk.desc())
    if before is None:
        return q
    table: Any = pk.table
    row = table.alias("cursor_row")  # an alias: the outer table would correlate
    cursor_at = select(row.c[at.key]).where(row.c[pk.key] == before).scalar_subquery()
    return q.where(tuple_(at, pk) < tuple_(cursor_at, before))
