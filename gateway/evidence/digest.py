"""How a chained record's digest is computed: one rule, in Python and in PostgreSQL's SQL.

A record's digest is sha256 over its table's name and its fields joined by U+001F: the pk,
then ``fields`` in order, each as text by its column's type (text as stored, NULL as "";
integers in decimal; timestamps ISO 8601 in UTC with microseconds; booleans true/false;
bytes as their sha256 in hex), then the ``added`` fields that are not NULL. The same rule is
computed in Python (SQLite, tests) and in one SQL expression on PostgreSQL, so a batch's
digests never leave the database as rows. The chain (``gateway.evidence.chain``) and a
payment's changing columns (``gateway.evidence.payments``) both use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    case,
    cast,
    func,
    literal,
)

from gateway.storage.engine import SQLITE_SHA256
from gateway.storage.types import UTCDateTime

__all__ = ["ChainedTable", "Signed", "hash_expr"]


@dataclass(frozen=True, slots=True)
class Signed:
    """A detached signature a record carries: over ``body`` (a bytes column), in ``signature``,
    by the party ``signer(row)`` names ("": whoever holds the key id)."""

    what: str  # how a report names it: "partner signature", "receipt signature"
    body: str
    signature: str
    signer: Callable[[Any], str]


def _kind(column: ColumnElement[Any]) -> str:
    t = column.type
    if isinstance(t, UTCDateTime):
        return "ts"
    if isinstance(t, Date):
        return "date"
    if isinstance(t, LargeBinary):
        return "bytes"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer):  # BigInteger, and the PK variant, are Integers
        return "int"
    if isinstance(t, String):  # Text is a String
        return "text"
    raise TypeError(f"column {column} of type {t} has no digest rule")


@dataclass(frozen=True, slots=True)
class ChainedTable:
    """One table of evidence in the chain.

    ``fields``: the immutable columns the digest covers, in order (after the pk); bytes
    columns are hashed in. ``added``: columns given to the table after its records were
    first chained, in the digest after ``fields`` only when not NULL, so a record chained
    before a column existed keeps its digest. ``stored_hashes`` maps a bytes column to a
    column holding its sha256, used only by the weaker ``trust_stored_hashes`` verify.
    ``time_column`` is what the unchained-record check compares with the settle window;
    ``signed``: the signatures ``verify --signatures`` checks; ``name``: how a report names a
    record (from ``fields``).
    """

    table: Table
    fields: tuple[str, ...]
    time_column: str = "received_at"
    stored_hashes: Mapping[str, str] = field(default_factory=dict)
    signed: tuple[Signed, ...] = ()
    name: Callable[[Any], str] | None = None
    added: tuple[str, ...] = ()

    def kinds(self) -> list[tuple[str, str]]:
        return [(f, _kind(self.table.c[f])) for f in self.fields]

    def added_kinds(self) -> list[tuple[str, str]]:
        kinds = [(f, _kind(self.table.c[f])) for f in self.added]
        assert all(k in ("text", "int") for _, k in kinds), "an added column is text or int"
        return kinds

    @property
    def hashed(self) -> tuple[str, ...]:
        return tuple(f for f, k in self.kinds() if k == "bytes")

    def digest(self, r: Any) -> str:
        """The digest of a row that has every field, bytes fields as ``<name>_sha`` (hex)."""
        parts = [self.table.name, str(r.pk)]
        for f, kind in self.kinds():
            if kind == "bytes":
                parts.append(getattr(r, f"{f}_sha"))
                continue
            v = getattr(r, f)
            if v is None:
                parts.append("")
            elif kind == "ts":
                parts.append(v.isoformat(timespec="microseconds"))
            elif kind == "date":
                parts.append(v.isoformat())
            elif kind == "bool":
                parts.append("true" if v else "false")
            else:
                parts.append(str(v))
        parts.extend(str(v) for f, _ in self.added_kinds() if (v := getattr(r, f)) is not None)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def sql_digest(self, *, trust_stored: bool = False,
                   columns: Any = None) -> ColumnElement[str]:
        """The same digest as one PostgreSQL expression over the table's row (or over
        ``columns``, a selectable's ``.c`` with the same names: an UPDATE's RETURNING)."""
        t = self.table
        cols = t.c if columns is None else columns
        parts: list[ColumnElement[Any]] = [literal(t.name, Text), cast(cols.pk, Text)]
        for f, kind in self.kinds():
            c = cols[f]
            if kind == "bytes":
                stored = self.stored_hashes.get(f) if trust_stored else None
                parts.append(t.c[stored] if stored else hash_expr("postgresql", c))
            elif kind == "ts":
                parts.append(func.coalesce(func.to_char(func.timezone("UTC", c),
                                                        _PG_TS) + "+00:00", ""))
            elif kind == "date":
                parts.append(func.coalesce(func.to_char(c, "YYYY-MM-DD"), ""))
            elif kind == "bool":
                parts.append(case((c.is_(None), ""), (c, "true"), else_="false"))
            else:
                parts.append(func.coalesce(cast(c, Text), ""))
        # concat_ws skips a NULL argument: an added column that is NULL leaves no part.
        parts.extend(cast(cols[f], Text) for f, _ in self.added_kinds())
        joined = func.concat_ws(literal("\x1f", Text), *parts)
        return func.encode(func.sha256(func.convert_to(joined, "UTF8")), "hex")

    def describe(self, record_table: str, row: Any) -> str:
        return self.name(row) if self.name is not None else f"{record_table} pk {row.pk}"


_PG_TS = 'YYYY-MM-DD"T"HH24:MI:SS.US'


def hash_expr(dialect: str, column: ColumnElement[Any]) -> ColumnElement[str]:
    if dialect == "postgresql":
        hashed: ColumnElement[Any] = func.encode(func.sha256(column), "hex")
    else:
        hashed = getattr(func, SQLITE_SHA256)(column)
    return func.coalesce(hashed, "")
