"""A row's changing columns, evidenced by its newest event: the rule payments and pension
schedules share (``gateway.evidence.payments``, ``gateway.evidence.pensions`` say why each
needs it).

A chained record's digest covers only what never changes. A row the hub keeps updating (a
payment's state and payout account, a schedule's state and next period) is tied to its
history another way: each change is an event, chained whole, and each event records the digest
of the row's changing columns as they are once its change is written (read back in the same
transaction). So a row as it is must hash to what its newest event recorded. Every writer
checks that first (``require_unchanged``) and refuses to write over a row that differs:
writing would take the new event's digest of the changed row and make the change look like
the hub's own.

The digest is the chain's rule (``ChainedTable``), one SQL expression on PostgreSQL and Python
elsewhere. An event recorded before its table had the digest column has none: a row whose
newest event is such an event is counted as not compared, not as broken.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, and_, func, literal, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import EvidenceMismatchError
from gateway.evidence.digest import ChainedTable
from gateway.storage.bulk import one_of

__all__ = ["EvidencedChanges", "RowsCheck"]

_PAGE = 5000


@dataclass(slots=True)
class RowsCheck:
    compared: int = 0  # rows whose newest event recorded their changing columns
    uncompared: int = 0  # rows whose newest event predates the digest column
    problem: str | None = None  # the first row that is not what its newest event says


@dataclass(frozen=True)
class EvidencedChanges:
    """``table``'s ``changing`` columns, evidenced by ``events`` (whose ``fk`` names the row
    and whose ``sha`` column records the digest). A report names a row by its pk and its
    ``key`` column ("payments pk 7 (payment PAY-1)"); ``what`` says which columns differ;
    ``held`` is what a refused write tells its caller."""

    table: Table
    events: Table
    fk: str
    sha: str
    changing: tuple[str, ...]
    key: str
    noun: str  # what the key names: "payment", "pension"
    what: str
    held: str
    _now: ChainedTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_now", ChainedTable(self.table, self.changing))

    def digest(self, pk: int, values: Mapping[str, Any] | RowMapping) -> str:
        """The digest of row ``pk`` whose changing columns are ``values`` (as read back)."""
        return self._now.digest(SimpleNamespace(pk=pk, **{c: values[c] for c in self.changing}))

    def sql_digest(self, columns: Any = None) -> ColumnElement[str]:
        """The same digest as a PostgreSQL expression over the table (or ``columns``: an
        UPDATE's RETURNING with ``pk`` and every changing column)."""
        return self._now.sql_digest(columns=columns)

    async def digests(self, conn: AsyncConnection, pks: Collection[int]) -> dict[int, str]:
        """The digest of each row ``pks`` as this transaction sees it."""
        if not pks:
            return {}
        t = self.table
        where = one_of(conn, t.c.pk, list(pks))
        if conn.dialect.name == "postgresql":
            rows = await conn.execute(select(t.c.pk, self.sql_digest()).where(where))
            return {int(pk): str(d) for pk, d in rows}
        rows = await conn.execute(select(t.c.pk, *(t.c[c] for c in self.changing)).where(where))
        return {int(r.pk): self.digest(r.pk, r._mapping) for r in rows}

    def _against_newest(self, conn: AsyncConnection) -> tuple[Select[Any], bool]:
        """Each row beside its newest event (outer join: a row with none has NULLs)."""
        t, e = self.table, self.events
        newest = (select(func.max(e.c.pk)).where(e.c[self.fk] == t.c.pk)
                  .correlate(t).scalar_subquery())
        pg = conn.dialect.name == "postgresql"
        now = [self.sql_digest().label("now_sha256")] if pg else [t.c[c] for c in self.changing]
        return (select(t.c.pk, t.c[self.key], e.c.pk.label("event_pk"),
                       e.c.cause.label("event_cause"), e.c[self.sha].label("event_sha256"), *now)
                .select_from(t.outerjoin(e, e.c.pk == newest))), pg

    def _differs(self, r: Row[Any], pg: bool) -> str | None:
        """Why row ``r`` (of ``_against_newest``) is not what its newest event recorded, or
        None if it is (or its newest event predates the digest and cannot say)."""
        name = f"{self.table.name} pk {r.pk} ({self.noun} {r._mapping[self.key]})"
        if r.event_pk is None:
            return f"{name}: it has no event, so it was not written by the hub"
        if r.event_sha256 is None:
            return None
        if (r.now_sha256 if pg else self.digest(r.pk, r._mapping)) != r.event_sha256:
            return (f"{name}: {self.what} is not what its newest event ({self.events.name} "
                    f"pk {r.event_pk}, {r.event_cause}) recorded: it was changed without an "
                    "event")
        return None

    async def mismatched(self, conn: AsyncConnection, pks: Collection[int]) -> dict[int, str]:
        """The rows among ``pks`` that are not what their newest event recorded, each with
        why; empty when every one is (the check every writer makes before it writes)."""
        if not pks:
            return {}
        q, pg = self._against_newest(conn)
        q = q.where(one_of(conn, self.table.c.pk, list(pks)))
        if pg:  # the database compares: only the rare row that differs comes back to say why
            e = self.events.c
            q = q.where(or_(e.pk.is_(None), and_(
                e[self.sha].is_not(None), e[self.sha] != self.sql_digest())))
        rows = await conn.execute(q)
        return {int(r.pk): why for r in rows if (why := self._differs(r, pg)) is not None}

    async def require_unchanged(self, conn: AsyncConnection, pks: Collection[int]) -> None:
        """Refuse to write over a row changed beside the hub.

        Raises:
            EvidenceMismatchError: the first (in pk order) of ``pks`` that is not what its
                newest event recorded. Writing it would record the change as the hub's own.
        """
        found = await self.mismatched(conn, pks)
        if found:
            raise EvidenceMismatchError(f"{found[min(found)]}; {self.held}")

    def unchanged_clause(self) -> ColumnElement[bool]:
        """The same check as a PostgreSQL expression on the table (a batched UPDATE's guard,
        or a column of a locking read): the row has an event, and its newest one predates the
        digest or recorded it as it is."""
        t, e = self.table, self.events
        newest = (select(func.coalesce(e.c[self.sha], ""))
                  .where(e.c[self.fk] == t.c.pk).order_by(e.c.pk.desc()).limit(1)
                  .correlate(t).scalar_subquery())
        return newest.in_([literal(""), self.sql_digest()])

    async def check(self, conn: AsyncConnection, *, page: int = _PAGE) -> RowsCheck:
        """Compare every row with its newest event, ``page`` rows a query, in pk order; stop
        at the first that differs (or has no event at all)."""
        result = RowsCheck()
        q, pg = self._against_newest(conn)
        t = self.table
        lo = 0
        while True:
            rows = (await conn.execute(
                q.where(t.c.pk > lo).order_by(t.c.pk).limit(page))).all()
            for r in rows:
                if (why := self._differs(r, pg)) is not None:
                    result.problem = why
                    return result
                if r.event_sha256 is None:
                    result.uncompared += 1
                else:
                    result.compared += 1
            if len(rows) < page:
                return result
            lo = rows[-1].pk
