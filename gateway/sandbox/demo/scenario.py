"""The demo's cast and record: partners, amounts and faults, the live progress lines, the
scenario's findings, and the small HTTP helpers the steps share."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "AMOUNTS", "DOCUMENT_REQUESTS", "PARTNERS", "PARTNER_FAULTS", "PENSION", "RAIL_FAULTS",
    "REJECTED", "SHORT", "Progress", "Scenario", "bar", "check", "got", "payment_states", "settled",
    "track",
]

PARTNERS = ["ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"]
SHORT = {"ID-BPJSTK": "ID", "MM-SSB": "MM", "NP-FEB": "NP", "PK-MOPHRD": "PK", "BD-WEWB": "BD"}
RAIL_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("timeout", {"seconds": 1.0}), ("error_after", {"status": 500}),
    ("error_before", {"status": 503}), ("reset_after", {}), ("throttle", {"status": 429}),
    ("lost_callback", {}), ("duplicate_callback", {})]
PARTNER_FAULTS = {"NP-FEB": "error_5xx", "PK-MOPHRD": "reset", "BD-WEWB": "error_after"}
DOCUMENT_REQUESTS = ["NP-FEB", "MM-SSB", "PK-MOPHRD"]  # first claim of each
REJECTED = "DEMO-BD-2"
AMOUNTS = {"EI_TEMPORARY_DISABLEMENT": "1250.00", "EI_PERMANENT_DISABLEMENT": "8400.00",
           "EI_DEPENDANTS": "5600.00", "INV_PENSION": "3100.00"}
PENSION = "PEN-PK-0001"
TIME_BUDGET = 55.0  # seconds for the whole scenario (the issue asks for under a minute)


class Progress:
    """One live line per phase (on a terminal), then a closing line per phase on stdout."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.live = sys.stderr.isatty()
        self.label = ""

    def begin(self, label: str) -> None:
        self.label = label
        self.update("")

    def update(self, text: str) -> None:
        if self.live:
            sys.stderr.write(f"\r\x1b[K  … {self.label:<34} {text}")
            sys.stderr.flush()

    def end(self, ok: bool, text: str) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        mark = "ok" if ok else "!!"
        print(f"  [{mark}] {self.label:<34} {text:<48} {time.monotonic() - self.started:5.1f}s",
              flush=True)




@dataclass
class Scenario:
    folder: Path
    started: float
    progress: Progress
    problems: list[str] = field(default_factory=list)
    sims: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # ref -> facts
    expected: dict[str, str] = field(default_factory=dict)  # payment id -> final state
    died_on: date | None = None  # the pension beneficiary's death, once notified
    pension_ids: list[str] = field(default_factory=list)
    # Read back from the database after the hub stopped, for the checks and the summary.
    out_messages: Sequence[Any] = ()
    in_messages: Sequence[Any] = ()
    payment_rows: list[Any] = field(default_factory=list)
    chain: Any = None  # gateway.evidence.chain's verification report

    def remaining(self) -> float:
        return max(0.5, self.started + TIME_BUDGET - time.monotonic())

    async def wait(self, what: str, check: Callable[[], Awaitable[tuple[int, int]]],
                   timeout: float = 20.0, every: float = 0.2) -> bool:
        """Poll ``check`` (done, total) until done == total; a problem if it times out."""
        deadline = time.monotonic() + min(timeout, self.remaining())
        done, total = 0, 0
        while True:
            done, total = await check()
            self.progress.update(bar(done, total))
            if done >= total:
                return True
            if time.monotonic() > deadline:
                self.problems.append(f"{what}: only {done} of {total} after waiting")
                return False
            await asyncio.sleep(every)


def bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"



def got(sim: Any, type_: str, ref: str, **payload: str) -> list[dict[str, Any]]:
    """The messages of ``type_`` on thread ``ref`` that the partner simulator received."""
    return [m for m in list(sim.received.values())
            if m["type"] == type_ and m.get("correlation_id") == ref
            and all(m["payload"].get(k) == v for k, v in payload.items())]


def check(sc: Scenario, r: httpx.Response, what: str) -> None:
    if r.status_code >= 300:
        sc.problems.append(f"{what}: HTTP {r.status_code} {r.text[:200]}")


async def payment_states(api: httpx.AsyncClient, **query: str) -> dict[str, str]:
    r = await api.get("/v1/backoffice/payments", params={"limit": 500, **query})
    return {p["payment_id"]: p["state"] for p in r.json()["payments"]}


async def settled(api: httpx.AsyncClient, expected: dict[str, str]) -> tuple[int, int]:
    states = await payment_states(api)
    return sum(1 for pid, want in expected.items() if states.get(pid) == want), len(expected)


async def track(http: httpx.AsyncClient, hub_url: str, sim: Any, ref: str) -> dict[str, Any]:
    from gateway.protocol.envelope import HUB_PARTY

    token = sim.signer.token(HUB_PARTY, ttl=60, now=time.time())
    r = await http.get(f"{hub_url}/v1/tracking/{ref}", headers={
        "Authorization": f"Bearer {token}", "X-Request-Id": str(uuid.uuid4())})
    data: dict[str, Any] = r.json()
    return data
