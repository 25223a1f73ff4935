"""A statement's scan is advanced on one thread only, from its first item to its end.

lxml (the camt reader) frees a parser's nodes with the dictionary of the thread that made them:
a camt scan advanced by turns on the default pool's threads aborted ``gateway scheduler``
(``free(): invalid pointer``) on its first statement with entries. The scripted rail records
the thread of every step of its scan, the generator's end included."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from typing import Any, BinaryIO

import pytest

from gateway.composition import Hub
from gateway.ports.rail import StatementItem
from gateway.reconciliation import service
from gateway.reconciliation.service import ReconciliationService
from tests.support.recon import ScriptedRail, add_payment, line, record, statement

pytestmark = pytest.mark.anyio
DAY = date(2026, 12, 1)


class ThreadPerCall(ThreadPoolExecutor):
    """The default executor at its least lucky: every call on a new thread (a pool may reuse
    an idle thread, or start another when the last one has not yet said it is idle)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any,  # type: ignore[override]
               **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def call() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        threading.Thread(target=call).start()
        return future


class ThreadRecordingRail(ScriptedRail):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def scan_statement(self, source: BinaryIO) -> Iterator[StatementItem]:
        items = super().scan_statement(source)

        def recorded() -> Iterator[StatementItem]:
            try:
                for item in items:
                    self.threads.append(threading.current_thread().name)
                    yield item
            finally:
                self.threads.append(threading.current_thread().name)

        return recorded()


@pytest.mark.parametrize("again", [False, True], ids=["new-run", "found-run"])
async def test_every_step_of_a_scan_is_on_one_thread(hub: Hub, recon: ReconciliationService,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     again: bool) -> None:
    monkeypatch.setattr(service, "BATCH", 2)  # several batches, several hops to a thread
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPerCall())
    try:
        await _run_twice(hub, recon, again)
    finally:
        loop.set_default_executor(ThreadPoolExecutor())


async def _run_twice(hub: Hub, recon: ReconciliationService, again: bool) -> None:
    rail = ThreadRecordingRail()
    recon.rails["fake"] = rail  # type: ignore[assignment]
    for n in range(7):
        await add_payment(hub.uow, f"P-{n}")
    data = statement([record(), *(line(n + 1, e2e=f"P-{n}") for n in range(7))])
    result = await recon.run("fake", DAY, data)
    assert result.verdict == "balanced"
    if again:  # the run is found: the scan is stopped after its first item, on its thread
        rail.threads.clear()
        await recon.run("fake", DAY, data)
    assert len(rail.threads) >= 2
    assert set(rail.threads) == {rail.threads[0]}, rail.threads
    assert rail.threads[0] != threading.current_thread().name  # not the event loop's
