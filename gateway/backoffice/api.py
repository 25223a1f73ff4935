"""The back-office API (``/v1/backoffice``) and the rails' callback endpoint.

Back-office calls authenticate with a service token (``Authorization: Bearer``, scopes per
client, gateway.backoffice.auth); partner keys are never accepted here. Rail callbacks are
authenticated by the rail's adapter (HMAC over the exact body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from gateway.backoffice.auth import BackofficeClient
from gateway.backoffice.service import BackofficeService
from gateway.composition import Hub
from gateway.payments.repository import PaymentFilter
from gateway.payments.requests import PaymentIn, PensionIn
from gateway.protocol import strictjson
from gateway.protocol.envelope import CalendarDate, PartyId, Ref, Text
from gateway.reconciliation.domain import ItemKind
from gateway.web.edge import read_body
from gateway.web.jsonbody import strict_request

__all__ = ["CALLBACK_MAX_BYTES", "callbacks_router", "router"]

CALLBACK_MAX_BYTES = 256 * 1024

class _AuthenticatedRoute(APIRoute):
    """A back-office route: the service token is checked before the body is read, so an
    unauthenticated caller costs no body read or parse; the body is then read under the
    strict rules (gateway.web.jsonbody), the scope checked by the endpoint's dependency."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            _hub(request).payments.tokens.authenticate(request.headers.get("authorization"))
            return await handler(await strict_request(request))
        return authenticated


router = APIRouter(prefix="/v1/backoffice", tags=["back office"],
                   route_class=_AuthenticatedRoute)
callbacks_router = APIRouter(tags=["rails"])


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _service(request: Request) -> BackofficeService:
    return _hub(request).backoffice


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
    view, created = await _service(request).instruct(body)
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/payments/{payment_id}", summary="A payment with every state change and cause")
async def get_payment(payment_id: str, request: Request, _: Read) -> dict[str, Any]:
    return await _service(request).payment(payment_id)


@router.get("/payments", summary="Query payments (newest first, cursor by `before`)")
async def list_payments(
    request: Request, _: Read,
    state: str | None = None, rail: str | None = None, partner_id: str | None = None,
    claim_ref: str | None = None, pension_ref: str | None = None,
    before: Annotated[int | None, Query(ge=1, le=strictjson.MAX_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    where = PaymentFilter(state=state, rail=rail, partner_id=partner_id, claim_ref=claim_ref,
                          pension_ref=pension_ref)
    return await _service(request).payments_page(where, before=before, limit=limit)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


@router.post("/payments/{payment_id}/cancel",
             summary="Cancel a payment (at once if never sent, else ask its rail)")
async def cancel_payment(payment_id: str, body: CancelIn, request: Request,
                         client: Write) -> JSONResponse:
    view = await _service(request).cancel(payment_id, f"{client.name}: {body.reason}")
    # 202: the rail may hold the payout; its answer to the cancel decides the outcome.
    return JSONResponse(view, status_code=202 if view["state"] == "cancel_requested" else 200)


# -- pensions ------------------------------------------------------------------------------------

@router.post("/pensions", status_code=201, summary="Instruct a pension schedule")
async def create_pension(body: PensionIn, request: Request, _: Write) -> JSONResponse:
    view, created = await _service(request).create_pension(body)
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/pensions/{pension_ref}", summary="A pension schedule with its history")
async def get_pension(pension_ref: str, request: Request, _: Read) -> dict[str, Any]:
    return await _service(request).pension(pension_ref)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    today: CalendarDate | None = None


@router.post("/pensions/run", summary="Create the payments of every due pension period now")
async def run_pensions(body: RunIn, request: Request, _: Write) -> dict[str, int]:
    return {"created": await _service(request).run_pensions(body.today)}


# -- hub messages --------------------------------------------------------------------------------

class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner_id: PartyId
    type: str = Field(min_length=1, max_length=40)
    payload: dict[str, Any]
    correlation_id: Ref | None = None


@router.post("/messages", status_code=202, summary="Send a hub message (protocol.md) to a partner")
async def send_message(body: MessageIn, request: Request, _: Send) -> dict[str, Any]:
    message_id = await _service(request).send_message(
        partner_id=body.partner_id, type_=body.type, payload=body.payload,
        correlation_id=body.correlation_id)
    return {"message_id": message_id, "status": "queued"}


# -- operations: dead letters --------------------------------------------------------------------

@router.get("/dead-letters", summary="Outbox work that was given up, with its last error")
async def list_dead_letters(
    request: Request, _: Ops, kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return {"dead_letters": await _service(request).dead_letters(kind, limit)}


@router.get("/discrepancies",
            summary="Rail reports that contradicted the record (paid after a cancel, ...)")
async def list_discrepancies(
    request: Request, _: Ops, state: Annotated[str | None, Query(pattern="^(open|resolved)$")]
    = "open", payment_id: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return {"discrepancies": await _service(request).discrepancies(state, payment_id, limit)}


@router.post("/dead-letters/{task_id}/retry", summary="Try a dead letter again now")
async def retry_dead_letter(
    task_id: Annotated[int, Path(ge=1, le=strictjson.MAX_INT)], request: Request, _: Ops,
) -> dict[str, Any]:
    return await _service(request).retry_dead_letter(task_id)


# -- reconciliation ------------------------------------------------------------------------------

_KINDS = "^(" + "|".join(k.value for k in ItemKind) + ")$"
_RAIL = r"^[A-Za-z0-9_.-]{1,32}$"
_RUN_ID = r"^[0-9a-f]{20}$"


@router.get("/reconciliation/runs", summary="Reconciliation runs (newest first, cursor `before`)")
async def list_reconciliation_runs(
    request: Request, _: Read, rail: Annotated[str | None, Query(pattern=_RAIL)] = None,
    date: Annotated[CalendarDate | None, Query(description="business date, YYYY-MM-DD")]
    = None,
    before: Annotated[int | None, Query(ge=1, le=strictjson.MAX_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return await _hub(request).reconciliation.runs(rail, date, before, limit)


@router.get("/reconciliation/runs/{run_id}", summary="A run's summary and manifest")
async def get_reconciliation_run(
    run_id: Annotated[str, Path(pattern=_RUN_ID)], request: Request, _: Read,
) -> dict[str, Any]:
    return await _hub(request).reconciliation.run_detail(run_id)


@router.get("/reconciliation/runs/{run_id}/items",
            summary="A run's items in statement order (cursor `after`)")
async def list_reconciliation_items(
    run_id: Annotated[str, Path(pattern=_RUN_ID)], request: Request, _: Read,
    kind: Annotated[str | None, Query(pattern=_KINDS)] = None,
    after: Annotated[int, Query(ge=0, le=strictjson.MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return await _hub(request).reconciliation.items(run_id, kind, after, limit)


@router.get("/reconciliation/cases",
            summary="Reconciliation cases for ops (newest first, cursor `before`)")
async def list_reconciliation_cases(
    request: Request, _: Ops,
    state: Annotated[str | None, Query(pattern="^(open|closed)$")] = "open",
    kind: Annotated[str | None, Query(pattern=_KINDS)] = None,
    rail: Annotated[str | None, Query(pattern=_RAIL)] = None,
    before: Annotated[int | None, Query(ge=1, le=strictjson.MAX_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return await _hub(request).reconciliation.cases(state, kind, rail, before, limit)


# -- rail callbacks ------------------------------------------------------------------------------

@callbacks_router.post("/v1/rails/{rail}/callbacks", summary="A rail's signed status callback")
async def rail_callback(rail: str, request: Request) -> dict[str, Any]:
    service = _service(request)
    service.rail(rail)  # an unknown rail is a 404 before the body is read
    # The rail's HMAC covers the exact body, so it is read (at most CALLBACK_MAX_BYTES,
    # else 413) before the adapter can authenticate it.
    body = await read_body(request, CALLBACK_MAX_BYTES)
    return await service.rail_callback(rail, request.headers, body)
