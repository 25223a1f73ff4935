"""What the evidence suites share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import PgTemplate


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema yet, of each kind; dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    pg: PgTemplate = request.getfixturevalue("pg_template")
    name = asyncio.run(pg.empty())
    try:
        yield pg.url(name)
    finally:
        asyncio.run(pg.drop(name))
