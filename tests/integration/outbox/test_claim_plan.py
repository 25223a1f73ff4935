"""The claim reads only open work, whatever the number of finished tasks (issue 12 item 8).

Finished tasks are never deleted. The claim used to walk the primary key from the oldest task
and filter out every finished one on each call, so its cost grew with the outbox's history
(33 ms per claim at 100,000 finished tasks). Both databases: a claim among many finished tasks
still takes the oldest due, unblocked tasks in order. PostgreSQL: its plan reads the partial
indexes of migration 0012 and examines about as many rows as it claims, not the finished ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.outbox import records
from gateway.outbox.claiming import claim
from gateway.storage.engine import create_engine
from gateway.storage.uow import factory_for
from tests.support.partners import NOW

pytestmark = pytest.mark.anyio

DONE = 20_000
OPEN = 300  # pending, due; every fourth one waits behind an earlier task of its case
LIMIT = 50


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(db_url)
    yield e
    await e.dispose()


def _task(i: int, state: str, key: str) -> dict[str, Any]:
    return {"kind": "deliver", "destination": "ID-BPJSTK", "ordering_key": key, "ref": str(i),
            "state": state, "attempts": 1 if state == "done" else 0, "next_attempt_at": NOW,
            "created_at": NOW, "updated_at": NOW}


async def _fill(engine: AsyncEngine) -> list[int]:
    """DONE finished tasks, then OPEN pending ones; return the pks a claim may take, in order."""
    rows = [_task(i, "done", f"C{i}") for i in range(DONE)]
    # Open tasks: pairs share a case key every fourth task, so the later of a pair is blocked.
    rows += [_task(DONE + i, "pending", f"O{i - 1 if i % 4 == 1 else i}") for i in range(OPEN)]
    async with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(records.enqueue_statement(), rows[start:start + 5000])
        pks = list((await conn.execute(text(
            "SELECT pk FROM outbox WHERE state = 'pending' ORDER BY pk"))).scalars())
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE outbox"))
    return [pk for i, pk in enumerate(pks) if i % 4 != 1]


async def test_a_claim_among_many_finished_tasks_takes_the_oldest_open_ones(
        engine: AsyncEngine) -> None:
    claimable = await _fill(engine)
    tasks = await claim(factory_for(engine), owner="d1", now=NOW + timedelta(seconds=1),
                        lease=timedelta(seconds=60), limit=LIMIT, kinds=["deliver"])
    assert [t.pk for t in tasks] == claimable[:LIMIT]
    again = await claim(factory_for(engine), owner="d2", now=NOW + timedelta(seconds=1),
                        lease=timedelta(seconds=60), limit=LIMIT, kinds=["deliver"])
    assert [t.pk for t in again] == claimable[LIMIT:2 * LIMIT]


def _sql(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *[n for child in plan.get("Plans", []) for n in _nodes(child)]]


async def test_the_claim_plan_reads_the_open_task_indexes_not_the_history(
        engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's; SQLite's claim is checked above")
    await _fill(engine)
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _m: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        tasks = await claim(factory_for(engine), owner="d1", now=NOW + timedelta(seconds=1),
                            lease=timedelta(seconds=60), limit=LIMIT, kinds=["deliver"])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert len(tasks) == LIMIT
    statement, params = captured[0]
    async with engine.connect() as conn:
        await conn.execute(text("UPDATE outbox SET state = 'pending' WHERE state = 'leased'"))
        # The dispatcher's driver prepares the statement, and after a few runs PostgreSQL may
        # keep its generic plan, which knows no parameter values: the partial indexes must
        # serve that plan too (the states are in the statement's text, not bound).
        await conn.exec_driver_sql("PREPARE claim_q AS " + statement)
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        plan = (await conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_q({', '.join(map(_sql, params))})"
        )).scalar_one()[0]["Plan"]
        await conn.rollback()
    nodes = _nodes(plan)
    used = {n.get("Index Name") for n in nodes} - {None}
    assert "ix_outbox_claimable_pk" in used, plan
    assert "ix_outbox_unfinished_ordering" in used, plan
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], plan
    examined = sum(n.get("Rows Removed by Filter", 0) + n.get("Actual Rows", 0) * n.get(
        "Actual Loops", 1) for n in nodes if n["Node Type"] == "Index Scan")
    # About the claimed rows and their order checks, never the 20,000 finished tasks.
    assert examined < 10 * LIMIT, plan
