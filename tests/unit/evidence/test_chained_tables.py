"""The table of chained tables is consistent with the schema it reads."""

from __future__ import annotations

import dataclasses
import importlib.util
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from sqlalchemy import Boolean, Date, Integer, LargeBinary

from gateway.evidence.chain import CHAINED
from gateway.storage.types import UTCDateTime


@pytest.mark.parametrize("name", sorted(CHAINED))
def test_every_entry_names_real_columns(name: str) -> None:
    spec = CHAINED[name]
    assert spec.table.name == name
    cols = spec.table.c
    for c in (*spec.fields, *spec.added, spec.time_column):
        assert c in cols, c
    assert not set(spec.fields) & set(spec.added)
    assert spec.hashed == tuple(f for f in spec.fields if isinstance(cols[f].type, LargeBinary))
    for h, stored in spec.stored_hashes.items():
        assert h in spec.hashed and stored in cols
    for s in spec.signed:
        assert s.body in spec.hashed and s.signature in cols


@pytest.mark.parametrize("name", sorted(CHAINED))
def test_the_digest_reads_only_what_the_entry_declares(name: str) -> None:
    spec = CHAINED[name]
    # Every declared column (a string, for the digest's join) and every hashed column's hash:
    # a digest that reached for anything else would raise here instead of at chaining time.
    # One value and another of each column's kind (the digest renders each kind its own way).
    def values_of(column: str) -> tuple[object, object]:
        kind = spec.table.c[column].type
        if isinstance(kind, UTCDateTime):
            return datetime(2026, 12, 2, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        if isinstance(kind, Boolean):
            return True, False
        if isinstance(kind, Date):
            return date(2026, 12, 2), date(2027, 1, 1)
        if isinstance(kind, Integer):
            return 7, 8
        return "x", "y"

    plain = [f for f in spec.fields if f not in spec.hashed]
    values = {c: values_of(c)[0] for c in plain}
    row = SimpleNamespace(pk=7, **values, **{f"{h}_sha": "ab" * 32 for h in spec.hashed},
                          **dict.fromkeys(spec.added))
    first = spec.digest(row)
    assert len(first) == 64
    # A column added later, still NULL, leaves the digest of a record chained before it.
    assert first == dataclasses.replace(spec, added=()).digest(row)
    for c in spec.added:
        setattr(row, c, values_of(c)[0])
        assert spec.digest(row) != first, c
        setattr(row, c, None)
    for c in plain:  # every declared column is in the digest
        was = getattr(row, c)
        setattr(row, c, values_of(c)[1])
        assert spec.digest(row) != first, c
        setattr(row, c, was)
    for h in spec.hashed:
        setattr(row, f"{h}_sha", "cd" * 32)
        assert spec.digest(row) != first, h
        setattr(row, f"{h}_sha", "ab" * 32)


def test_a_payments_digest_covers_exactly_the_columns_nothing_updates() -> None:
    """Every column of a payment is either in its digest (what was instructed) or one the hub
    updates afterwards (gateway.evidence.payments.CHANGING), never both: an updated column in
    the digest would break verify, and a column in neither would be unprotected. The
    PostgreSQL guard (migration 0012) lets exactly the updatable ones change."""
    from gateway.evidence.payments import CHANGING

    spec = CHAINED["payments"]
    columns = {c.name for c in spec.table.c} - {"pk"}
    assert not set(spec.fields) & set(CHANGING)
    assert set(spec.fields) | set(CHANGING) == columns
    migration = _migration("0012_payment_evidence")
    assert migration.GUARDED == {"payments": CHANGING, "payment_events": ()}


def test_payment_events_are_chained_whole() -> None:
    spec = CHAINED["payment_events"]
    assert set(spec.fields) | set(spec.added) == {c.name for c in spec.table.c} - {"pk"}
    assert spec.time_column == "at"


def test_a_schedules_digest_covers_exactly_the_columns_nothing_updates() -> None:
    """As for payments: every column of a pension schedule is in its chained digest (as
    awarded) or one the hub updates (gateway.evidence.pensions.CHANGING), never both; the
    PostgreSQL guard of migration 0017 lets exactly those change."""
    from gateway.evidence.pensions import CHANGING

    spec = CHAINED["pension_schedules"]
    columns = {c.name for c in spec.table.c} - {"pk"}
    assert not set(spec.fields) & set(CHANGING)
    assert set(spec.fields) | set(CHANGING) == columns
    migration = _migration("0017_pension_evidence")
    assert migration.MUTABLE == CHANGING
    assert set(migration.IMMUTABLE) == columns - set(CHANGING) | {"pk"}


def test_pension_events_are_chained_whole() -> None:
    spec = CHAINED["pension_events"]
    assert set(spec.fields) | set(spec.added) == {c.name for c in spec.table.c} - {"pk"}
    assert spec.time_column == "at"


def _migration(revision: str) -> ModuleType:
    """A migration module, loaded from its file (migrations/ is not a package)."""
    path = Path(__file__).resolve().parents[3] / f"migrations/versions/{revision}.py"
    loader = importlib.util.spec_from_file_location(f"m{revision[:4]}", path)
    assert loader is not None and loader.loader is not None
    migration = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(migration)
    return migration
