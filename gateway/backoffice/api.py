"""The back-office API (``/v1/backoffice``) and the rails' callback endpoint.

Back-office calls authenticate with a service token (``Authorization: Bearer``, scopes per
client, gateway.backoffice.auth); partner keys are never accepted here. Rail callbacks are
authenticated by the rail's adapter (HMAC over the exact body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

import sqlalchemy.exc
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from starlette.responses import JSONResponse

from gateway.backoffice.auth import BackofficeClient
from gateway.composition import Hub
from gateway.errors import NotFoundError
from gateway.payments import pensions
from gateway.payments import repository as repo
from gateway.payments.callbacks import handle_callback
from gateway.payments.domain import Cause
from gateway.payments.requests import PaymentIn, PensionIn
from gateway.payments.service import payment_view
from gateway.protocol.envelope import PartyId, Ref, Text
from gateway.storage.tables import outbox, payments

__all__ = ["callbacks_router", "router"]

router = APIRouter(prefix="/v1/backoffice", tags=["back office"])
callbacks_router = APIRouter(tags=["rails"])


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def scope(name: str) -> Callable[[Request], Awaitable[BackofficeClient]]:
    """A dependency: the authenticated back-office client, which must hold ``name``."""
    async def dep(request: Request) -> BackofficeClient:
        client = _hub(request).payments.tokens.authenticate(request.headers.get("authorization"))
        client.require(name)
        return client
    return dep


Read = Annotated[BackofficeClient, Depends(scope("payments:read"))]
Write = Annotated[BackofficeClient, Depends(scope("payments:write"))]
Send = Annotated[BackofficeClient, Depends(scope("messages:send"))]
Ops = Annotated[BackofficeClient, Depends(scope("ops"))]


# -- payments ------------------------------------------------------------------------------------

@router.post("/payments", status_code=201, summary="Instruct a payment (idempotent by id)",
             responses={200: {"description": "the same instruction again: the payment as is"},
                        409: {"description": "payment_conflict: the id has other content"}})
async def instruct_payment(body: PaymentIn, request: Request, _: Write) -> JSONResponse:
    hub = _hub(request)
    for attempt in (1, 2):
        try:
            async with hub.uow() as uow:
                row, created = await hub.payments.service.instruct(uow.conn, body, hub.clock())
                await uow.commit()
            break
        except sqlalchemy.exc.IntegrityError:
            if attempt == 2:  # pragma: no cover - a second race on the same id is impossible
                raise
            # A concurrent identical request won the insert: the retry finds and compares it.
    return JSONResponse(payment_view(row), status_code=201 if created else 200)


@router.get("/payments/{payment_id}", summary="A payment with every state change and cause")
async def get_payment(payment_id: str, request: Request, _: Read) -> dict[str, Any]:
    async with _hub(request).engine.connect() as conn:
        row = (await repo.by_ids(conn, [payment_id])).get(payment_id)
        if row is None:
            raise NotFoundError("not_found", f"no payment {payment_id}")
        return payment_view(row, await repo.events_of(conn, row.pk))


@router.get("/payments", summary="Query payments (newest first, cursor by `before`)")
async def list_payments(
    request: Request, _: Read,
    state: str | None = None, rail: str | None = None, partner_id: str | None = None,
    claim_ref: str | None = None, pension_ref: str | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    q = select(payments).order_by(payments.c.pk.desc()).limit(limit)
    for column, value in (("state", state), ("rail", rail), ("partner_id", partner_id),
                          ("claim_ref", claim_ref), ("pension_ref", pension_ref)):
        if value is not None:
            q = q.where(payments.c[column] == value)
    if before is not None:
        q = q.where(payments.c.pk < before)
    async with _hub(request).engine.connect() as conn:
        rows = list((await conn.execute(q)).mappings())
    return {"payments": [payment_view(r) for r in rows],
            "next": rows[-1].pk if len(rows) == limit else None}


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


@router.post("/payments/{payment_id}/cancel", summary="Cancel a payment not yet sent")
async def cancel_payment(payment_id: str, body: CancelIn, request: Request,
                         client: Write) -> dict[str, Any]:
    hub = _hub(request)
    async with hub.uow() as uow:
        row = await hub.payments.service.cancel(uow.conn, payment_id, Cause.cancelled,
                                                f"{client.name}: {body.reason}", hub.clock())
        await uow.commit()
    return payment_view(row)


# -- pensions ------------------------------------------------------------------------------------

@router.post("/pensions", status_code=201, summary="Instruct a pension schedule")
async def create_pension(body: PensionIn, request: Request, _: Write) -> JSONResponse:
    hub = _hub(request)
    async with hub.uow() as uow:
        row, created = await pensions.create_schedule(uow.conn, hub.payments.service, body,
                                                      hub.clock())
        await uow.commit()
    return JSONResponse(pensions.schedule_view(row), status_code=201 if created else 200)


@router.get("/pensions/{pension_ref}", summary="A pension schedule with its history")
async def get_pension(pension_ref: str, request: Request, _: Read) -> dict[str, Any]:
    async with _hub(request).engine.connect() as conn:
        return await pensions.get_schedule(conn, pension_ref)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    today: date | None = None


@router.post("/pensions/run", summary="Create the payments of every due pension period now")
async def run_pensions(body: RunIn, request: Request, _: Write) -> dict[str, int]:
    hub = _hub(request)
    now = hub.clock()
    async with hub.uow() as uow:
        n = await pensions.run_due(uow.conn, hub.payments.service, body.today or now.date(), now)
        await uow.commit()
    return {"created": n}


# -- hub messages --------------------------------------------------------------------------------

class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner_id: PartyId
    type: str = Field(min_length=1, max_length=40)
    payload: dict[str, Any]
    correlation_id: Ref | None = None


@router.post("/messages", status_code=202, summary="Send a hub message (protocol.md) to a partner")
async def send_message(body: MessageIn, request: Request, _: Send) -> dict[str, Any]:
    hub = _hub(request)
    async with hub.uow() as uow:
        msg = await hub.outbound.send(uow.conn, partner_id=body.partner_id, type_=body.type,
                                      payload=body.payload, now=hub.clock(),
                                      correlation_id=body.correlation_id)
        await uow.commit()
    return {"message_id": msg.message_id, "status": "queued"}


# -- operations: dead letters --------------------------------------------------------------------

def _task_view(r: Any) -> dict[str, Any]:
    return {"id": r.pk, "kind": r.kind, "destination": r.destination, "ref": r.ref,
            "ordering_key": r.ordering_key, "attempts": r.attempts, "last_error": r.last_error,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}


@router.get("/dead-letters", summary="Outbox work that was given up, with its last error")
async def list_dead_letters(
    request: Request, _: Ops, kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    q = select(outbox).where(outbox.c.state == "dead").order_by(outbox.c.pk).limit(limit)
    if kind:
        q = q.where(outbox.c.kind == kind)
    async with _hub(request).engine.connect() as conn:
        rows = (await conn.execute(q)).mappings()
        return {"dead_letters": [_task_view(r) for r in rows]}


@router.post("/dead-letters/{task_id}/retry", summary="Try a dead letter again now")
async def retry_dead_letter(task_id: int, request: Request, _: Ops) -> dict[str, Any]:
    hub = _hub(request)
    now = hub.clock()
    async with hub.uow() as uow:
        # A fresh age budget: the retry policy's maximum age counts from the operator's retry.
        result = await uow.conn.execute(
            update(outbox).where(outbox.c.pk == task_id, outbox.c.state == "dead")
            .values(state="pending", next_attempt_at=now, created_at=now, updated_at=now)
            .returning(outbox))
        row = result.mappings().first()
        if row is None:
            raise NotFoundError("not_found", f"no dead letter {task_id}")
        await uow.commit()
    return _task_view(row) | {"state": "pending"}


# -- rail callbacks ------------------------------------------------------------------------------

@callbacks_router.post("/v1/rails/{rail}/callbacks", summary="A rail's signed status callback")
async def rail_callback(rail: str, request: Request) -> dict[str, Any]:
    hub = _hub(request)
    adapter = hub.payments.rails.get(rail)
    if adapter is None:
        raise NotFoundError("not_found", f"no rail {rail!r}")
    body = await request.body()
    if len(body) > 256 * 1024:
        raise NotFoundError("not_found", "callback too large")  # pragma: no cover
    async with hub.uow() as uow:
        result = await handle_callback(uow.conn, hub.payments.service, rail, adapter,
                                       request.headers, body, hub.clock())
        await uow.commit()
    return result
