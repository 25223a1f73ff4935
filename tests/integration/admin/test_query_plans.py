"""The admin lists' PostgreSQL plans read off the index designed for each filter, in the list's
order: no Seq Scan of a big table, no Sort of one, the expected index used (issue 11 item 9).

PostgreSQL only: plans are what is tested. The tables are filled by the benchmark's loader
(bench.admin: realistic proportions of partners, types, states and times), ANALYZEd, then each
list query is run as the admin service runs it while its SQL is captured, and the captured
statements are EXPLAINed with their parameters. The few-row tables (proposals,
discrepancies) are rightly seq-scanned at their size, so there the plan is taken with
``enable_seqscan = off``: it shows the index can serve the filter in order without a sort.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.admin import END, SPAN, load
from gateway.admin import queries as q
from gateway.outbox import records
from gateway.payments import repository as repo
from gateway.storage.engine import create_engine
from tests.support.databases import PgTemplate

pytestmark = pytest.mark.anyio

ROWS = 60_000  # messages and payments, outbox tasks; audit records half as many
# A page smaller than the rarest filter's matches: where a filter matches fewer rows than a
# page, reading them all and sorting is the right plan, at any table size.
LIMIT = 20
_NOW = datetime(2026, 12, 1, tzinfo=UTC)  # the lists read proposals as they stand now
BIG = {"messages", "payments", "outbox", "admin_audit", "delivery_receipts", "message_state"}
MID = ROWS // 2


@pytest.fixture(scope="module")
def pg_loaded(pg_template: PgTemplate) -> Iterator[str]:
    """One loaded, analyzed PostgreSQL database for the module (loading takes seconds)."""
    name = asyncio.run(pg_template.clone())
    url = pg_template.url(name)
    try:
        asyncio.run(load("postgresql://" + url.partition("://")[2], 1, ROWS, largest=ROWS,
                         ratios={"admin_audit": 0.5, "outbox": 1.0}))
        yield url
    finally:
        asyncio.run(pg_template.drop(name))


@pytest.fixture
async def engine(pg_loaded: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(pg_loaded)
    yield e
    await e.dispose()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _plans(engine: AsyncEngine, run: Callable[[AsyncConnection], Awaitable[object]],
                 *, seqscan: bool = True) -> list[dict[str, Any]]:
    """Run ``run`` capturing its statements; return the EXPLAIN plan nodes of each."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any,
                _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    async with engine.connect() as conn:
        if not seqscan:
            await conn.exec_driver_sql("SET enable_seqscan = off")
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            await run(conn)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
        assert captured, "the query ran no SELECT"
        out = []
        for statement, parameters in captured:
            result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement,
                                                parameters)
            out.append(result.scalar_one()[0]["Plan"])
        await conn.rollback()
    return out


T_FROM = END - SPAN + timedelta(seconds=SPAN.total_seconds() * 0.5)
T_TO = END - SPAN + timedelta(seconds=SPAN.total_seconds() * 0.9)
M = q.MessageFilter
P = repo.PaymentFilter
A = q.AuditFilter

# Either index serves a query for the open tasks by state (see "outbox depth").
_OPEN_TASKS = ("ix_outbox_open_destination_kind", "ix_outbox_due", "ix_outbox_claimable_pk")
# A dead letter's "blocking" count reads the later tasks of its case by ordering key: through
# the whole-history index or the unfinished tasks' partial one (0013), both bounded by the key.
_CASE_TASKS = ("ix_outbox_ordering", "ix_outbox_unfinished_ordering")

# name -> (the list query as the service calls it, the indexes its plan must use,
#          whether a Sort is expected (a handful of rows), seq scans allowed (few-row table))
Run = Callable[[AsyncConnection, int | None], Awaitable[object]]
CASES: dict[str, tuple[Run, set[str | tuple[str, ...]], bool, bool]] = {
    "messages": (lambda c, b: q.messages_page(c, M(), before=b, limit=LIMIT),
                 {"pk_messages"}, False, True),
    "messages?partner": (lambda c, b: q.messages_page(c, M(partner_id="MM-SSB"), before=b,
                                                      limit=LIMIT),
                         {"ix_messages_partner_pk"}, False, True),
    "messages?partner+direction": (
        lambda c, b: q.messages_page(c, M(partner_id="MM-SSB", direction="out"), before=b,
                                     limit=LIMIT),
        {"ix_messages_partner_direction_pk"}, False, True),
    "messages?type": (lambda c, b: q.messages_page(c, M(type="death.notify"), before=b,
                                                   limit=LIMIT),
                      {"ix_messages_type_pk"}, False, True),
    "messages?direction": (lambda c, b: q.messages_page(c, M(direction="in"), before=b,
                                                        limit=LIMIT),
                           {"pk_messages"}, False, True),
    "messages?state": (lambda c, b: q.messages_page(c, M(state="failed"), before=b,
                                                    limit=LIMIT),
                       {"ix_message_state_state_pk"}, False, True),
    "messages?from+to": (lambda c, b: q.messages_page(c, M(received_from=T_FROM,
                                                           received_to=T_TO),
                                                      before=b, limit=LIMIT),
                         {"ix_messages_received_at_pk"}, False, True),
    "messages?correlation": (lambda c, b: q.messages_page(c, M(correlation_id="CLM-77"),
                                                          before=b, limit=LIMIT),
                             {"ix_messages_correlation_pk"}, False, True),
    "messages?payment": (lambda c, b: q.messages_page(c, M(payment_id="PAY-77"), before=b,
                                                      limit=LIMIT),
                         {"uq_payments_payment_id", "ix_messages_correlation_pk"}, True, True),
    "payments": (lambda c, b: repo.newest(c, P(), before=b, limit=LIMIT),
                 {"pk_payments"}, False, True),
    "payments?state": (lambda c, b: repo.newest(c, P(state="unknown"), before=b, limit=LIMIT),
                       {"ix_payments_state_pk"}, False, True),
    "payments?rail": (lambda c, b: repo.newest(c, P(rail="wise"), before=b, limit=LIMIT),
                      {"ix_payments_rail_pk"}, False, True),
    "payments?partner": (lambda c, b: repo.newest(c, P(partner_id="MM-SSB"), before=b,
                                                  limit=LIMIT),
                         {"ix_payments_partner_pk"}, False, True),
    "payments?from+to": (lambda c, b: repo.newest(c, P(created_from=T_FROM, created_to=T_TO),
                                                  before=b, limit=LIMIT),
                         {"ix_payments_created_at_pk"}, False, True),
    "payments?claim": (lambda c, b: repo.newest(c, P(claim_ref="CLM-77"), before=b, limit=LIMIT),
                       {"ix_payments_claim_ref"}, True, True),
    "outbox/dead": (lambda c, b: records.dead_page(c, before=b, limit=LIMIT),
                    {"ix_outbox_dead_pk", _CASE_TASKS}, False, True),
    # Dead letters are few whatever the outbox's size: the partial index bounds a filtered
    # page by their number.
    "outbox/dead?kind": (lambda c, b: records.dead_page(c, kind="deliver", before=b,
                                                        limit=LIMIT),
                         {"ix_outbox_dead_pk"}, False, True),
    "outbox/dead?destination": (lambda c, b: records.dead_page(c, destination="NP-FEB",
                                                               before=b, limit=LIMIT),
                                {"ix_outbox_dead_pk"}, False, True),
    # The open tasks are found by state through either index: which one the planner takes
    # depends on the sample ANALYZE drew; both read only the open rows.
    "outbox depth": (lambda c, b: records.depth(c), {_OPEN_TASKS}, True, True),
    "partners (health)": (lambda c, b: q.partner_stats(c, ["MM-SSB", "NP-FEB"]),
                          {"ix_messages_partner_direction_pk",
                           "uq_delivery_receipts_message_pk", _OPEN_TASKS}, True, True),
    "audit": (lambda c, b: q.audit_page(c, A(), before=b, limit=LIMIT), {"pk_admin_audit"},
              False, True),
    "audit?actor": (lambda c, b: q.audit_page(c, A(actor="auditor1"), before=b, limit=LIMIT),
                    {"ix_admin_audit_actor_pk"}, False, True),
    "audit?action": (lambda c, b: q.audit_page(c, A(action="proposals.approve"), before=b,
                                               limit=LIMIT),
                     {"ix_admin_audit_action_pk"}, False, True),
    "audit?outcome": (lambda c, b: q.audit_page(c, A(outcome="denied"), before=b, limit=LIMIT),
                      {"ix_admin_audit_outcome_pk"}, False, True),
    "audit?from+to": (lambda c, b: q.audit_page(c, A(at_from=T_FROM, at_to=T_TO), before=b,
                                                limit=LIMIT),
                      {"ix_admin_audit_at_pk"}, False, True),
    "audit export": (lambda c, b: q.audit_after(c, A(), after=(0, b or 0), limit=LIMIT),
                     {"ix_admin_audit_xact_id_pk"}, False, True),
    "discrepancies?state": (lambda c, b: repo.discrepancies_page(
        c, state="open", payment_id=None, before=b, limit=LIMIT),
        {"ix_payment_discrepancies_state"}, False, False),
    "discrepancies?payment": (lambda c, b: repo.discrepancies_page(
        c, state=None, payment_id="PAY-100", before=b, limit=LIMIT),
        {"ix_payment_discrepancies_payment_id_pk"}, False, False),
    "proposals?state": (lambda c, b: q.proposals_page(c, state="pending", action=None,
                                                      before=b, limit=LIMIT, now=_NOW),
                        {"ix_admin_proposals_state_pk"}, False, False),
    "proposals?action": (lambda c, b: q.proposals_page(c, state=None, action="replay",
                                                       before=b, limit=LIMIT, now=_NOW),
                         {"ix_admin_proposals_action_pk"}, False, False),
}


@pytest.mark.parametrize("page", ["first", "deep"])
@pytest.mark.parametrize("name", list(CASES))
async def test_each_admin_list_reads_its_index(engine: AsyncEngine, name: str,
                                               page: str) -> None:
    run, expected, sort_ok, big = CASES[name]
    before = MID if page == "deep" else None
    plans = await _plans(engine, lambda c: run(c, before), seqscan=big)
    nodes = [n for p in plans for n in _nodes(p)]
    scans = {(n["Node Type"], n.get("Relation Name")) for n in nodes}
    seq = {t for kind, t in scans if kind == "Seq Scan"}
    assert not seq & BIG, f"{name}: Seq Scan of {seq & BIG}"
    if not big:
        assert not seq, f"{name}: Seq Scan of {seq} with seq scans off"
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    missing = [e for e in expected if not (set(e) if isinstance(e, tuple) else {e}) & used]
    assert not missing, f"{name}: expected {missing} among {used}"
    if not sort_ok:
        sorts = [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")]
        assert not sorts, f"{name}: the plan sorts: {sorts[0].get('Sort Key')}"
        if before is not None:  # the cursor starts the index scan, not a filter after it
            names = {x for e in expected for x in (e if isinstance(e, tuple) else (e,))}
            conds = [n.get("Index Cond", "") for n in nodes if n.get("Index Name") in names]
            assert any("<" in c for c in conds), f"{name}: cursor not in {conds}"
