"""The suite's own rule for pytest-xdist: every test that uses PostgreSQL is in one group, and
one that reaches the server outside it is refused (tests/support/databases.py says why)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.support import databases


def _item(fixtures: tuple[str, ...] = (), params: dict[str, object] | None = None,
          marker: bool = False) -> Any:
    return SimpleNamespace(
        fixturenames=fixtures, callspec=SimpleNamespace(params=params) if params else None,
        get_closest_marker=lambda name: object() if marker and name == "postgresql" else None)


@pytest.mark.parametrize(("item", "uses"), [
    (_item(("db_url",), {"db_url": "postgresql"}), True),
    (_item(("empty_db",), {"empty_db": "postgresql", "n": 3}), True),
    (_item(("pg_url", "pg_template")), True),
    (_item(marker=True), True),
    (_item(("db_url",), {"db_url": "sqlite"}), False),
    (_item(("tmp_path",)), False),
], ids=["db_url", "another-kind-fixture", "pg_template", "marker", "sqlite", "none"])
def test_what_counts_as_using_postgresql(item: Any, uses: bool) -> None:
    assert databases.uses_postgresql(item) is uses


def test_this_test_is_grouped_only_if_it_uses_postgresql(
        request: pytest.FixtureRequest) -> None:
    groups = [m.args for m in request.node.iter_markers("xdist_group")]
    assert groups == []  # conftest's hook marked none: this test uses no PostgreSQL


def test_a_test_outside_the_group_is_refused_postgresql(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    databases.guard_postgresql(request.node)  # this test is not in the group
    try:
        with pytest.raises(RuntimeError, match="mark it @pytest.mark.postgresql"):
            databases.pg_admin_url()
    finally:
        monkeypatch.delenv("PYTEST_XDIST_WORKER")
        databases.guard_postgresql(request.node)
    assert databases.pg_admin_url()[0]
