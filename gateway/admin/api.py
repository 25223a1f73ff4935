"""The ops admin API (``/admin/v1``): thin endpoints over ``AdminService``.

Every route of this router is an ``_AuditedRoute``: before FastAPI reads anything it
authenticates the caller's OIDC bearer token (``gateway.admin.auth``), and whatever the
outcome (answered, denied, refused as bad input, failed) it leaves one audit record
(``gateway.admin.audit``), unless the act already wrote it in its own unit of work. So no
endpoint can forget its record, and a denied request is on the trail like any other.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.admin import queries as q
from gateway.admin.audit import AuditContext, TrustedProxies, write_record
from gateway.admin.auth import AdminVerifier
from gateway.admin.service import AdminService, require
from gateway.errors import InvalidMessageError, ProblemError
from gateway.payments.repository import PaymentFilter
from gateway.protocol import strictjson
from gateway.protocol.envelope import CalendarDate
from gateway.reconciliation.domain import CASE_KINDS, ItemKind
from gateway.web.jsonbody import strict_request
from gateway.web.problems import problem_for, validation_problem

__all__ = ["AdminApi", "router"]

log = logging.getLogger(__name__)


class AdminApi:
    """What the admin router needs from the hub: the verifier, the service, the proxies.

    The verifier is built on first use: a dispatcher process builds the same hub and has no
    admin API to serve, so it needs no identity provider (``gateway serve`` builds it at start
    and so refuses to start without one in production).
    """

    def __init__(self, verifier: Callable[[], AdminVerifier], service: AdminService,
                 proxies: TrustedProxies) -> None:
        self._make_verifier = verifier
        self._verifier: AdminVerifier | None = None
        self.service, self.proxies = service, proxies

    @property
    def verifier(self) -> AdminVerifier:
        if self._verifier is None:
            self._verifier = self._make_verifier()
        return self._verifier


def _admin(request: Request) -> AdminApi:
    admin: AdminApi = request.app.state.hub.admin
    return admin


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    return "failed" if status >= 500 else "invalid"


class _AuditedRoute(APIRoute):
    """An admin route: authenticate first, then read the body under the strict rules
    (gateway.web.jsonbody); record the request whatever its outcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action = self.name

        async def audited(request: Request) -> Response:
            admin = _admin(request)
            peer = request.scope.get("client")
            query = request.url.query
            ctx = AuditContext(
                action=action, method=request.method,
                path=request.url.path + (f"?{query}" if query else ""),
                client_ip=admin.proxies.client_ip(peer[0] if peer else None,
                                                  request.headers.get("x-forwarded-for")))
            request.state.audit = ctx
            detail: str | None = None
            try:
                ctx.identity = await admin.verifier.authenticate(
                    request.headers.get("authorization"))
                response = await handler(await strict_request(request))
            except ProblemError as exc:
                response, detail = problem_for(exc), f"{exc.code}: {exc.detail}"
            except RequestValidationError as exc:
                response = validation_problem(exc)
                detail = "schema_violation"
            except StarletteHTTPException as exc:  # answered by the app's handler
                if not ctx.recorded:
                    await _record(admin, ctx, exc.status_code, str(exc.detail))
                raise
            except Exception:
                if not ctx.recorded:
                    await _record(admin, ctx, 500, "internal_error")
                raise
            if not ctx.recorded:
                await _record(admin, ctx, response.status_code, detail)
            return response
        return audited


async def _record(admin: AdminApi, ctx: AuditContext, status: int, detail: str | None) -> None:
    service = admin.service
    async with service.uow() as uow:
        await write_record(uow.conn, ctx, outcome=_outcome(status), status=status,
                           now=service.clock(), detail=detail)
        await uow.commit()


router = APIRouter(prefix="/admin/v1", tags=["admin"], route_class=_AuditedRoute,
                   responses={401: {"description": "token_invalid: no token, or not one "
                                                   "of the identity provider's for this API"},
                              403: {"description": "forbidden: the caller's roles lack the "
                                                   "permission"}})


def _ctx(request: Request) -> AuditContext:
    ctx: AuditContext = request.state.audit
    return ctx


def need(permission: str) -> Callable[[Request], AuditContext]:
    """A dependency: the request's audit context, whose caller must hold ``permission``."""
    def dep(request: Request) -> AuditContext:
        ctx = _ctx(request)
        require(ctx, permission)
        return ctx
    return dep


Viewer = Annotated[AuditContext, Depends(need("read"))]
Operator = Annotated[AuditContext, Depends(need("operate"))]
Approver = Annotated[AuditContext, Depends(need("approve"))]
Auditor = Annotated[AuditContext, Depends(need("audit"))]
KeyAdmin = Annotated[AuditContext, Depends(need("keys"))]
Cursor = Annotated[str | None, Query(max_length=40, description="`next` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]
Unmasked = Annotated[bool, Query(description="show national ids, accounts and wire bytes "
                                             "(operator, approver, auditor, admin; audited)")]
Id = Annotated[int, Path(ge=1, le=strictjson.MAX_INT)]
Name = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


def _svc(request: Request) -> AdminService:
    return _admin(request).service


# -- response schemas (documentation of what the endpoints answer) -------------------------------

class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class MessageSummary(_Out):
    id: int
    direction: Literal["in", "out"]
    partner_id: str
    message_id: str
    sender: str
    recipient: str
    type: str
    correlation_id: str | None
    sent_at: str
    received_at: str
    kid: str
    state: str | None
    state_detail: str | None
    state_at: str | None


class MessagesPage(_Out):
    messages: list[MessageSummary]
    next: str | None


class Task(_Out):
    id: int
    kind: str
    destination: str
    ref: str
    ordering_key: str | None
    state: str
    attempts: int
    last_error: str | None = Field(description="sanitised: one line, long digit runs hidden")
    created_at: str
    updated_at: str
    next_attempt_at: str


class MessageDetail(MessageSummary):
    masked: bool
    wire_b64: str | None = Field(description="the exact wire bytes (standard base64); "
                                             "null unless unmasked")
    canonical_b64: str | None
    wire_media_type: str
    body_sha256: str
    signature: str
    receipt_b64: str | None
    receipt_signature: str | None
    delivery: dict[str, Any] = Field(description="attempts (outbox tasks) and the partner's "
                                                 "signed delivery receipts")
    processing: dict[str, Any]


class Queue(_Out):
    destination: str
    kind: str
    waiting: int
    retrying: int
    dead: int
    oldest_age_seconds: float | None


class Depth(_Out):
    queues: list[Queue]
    at: str


class DeadLetter(Task):
    blocking: int = Field(description="later tasks of its case it holds back")


class DeadPage(_Out):
    dead_letters: list[DeadLetter]
    next: str | None


class Breaker(_Out):
    destination: str
    manual: Literal["open", "closed"] | None
    held: bool
    suspended: bool
    set_by: str | None
    reason: str | None
    set_at: str | None
    failing: int


class BreakerSet(_Out):
    destination: str
    manual: Literal["open", "closed"]
    set_by: str
    reason: str
    set_at: str


class Suspended(_Out):
    partner_id: str
    suspended: bool
    already: bool = Field(description="it was suspended by an operator before this call")


class PaymentDetail(_Out):
    payment_id: str
    state: str
    rail: str
    masked: bool
    beneficiary: dict[str, Any] = Field(description="name, and national id (masked unless "
                                                    "unmasked)")
    payout: dict[str, Any] = Field(description="provider, account_name, account (masked "
                                               "unless unmasked)")
    events: list[dict[str, Any]] = Field(description="every transition with its cause")
    discrepancies: list[dict[str, Any]]


class Breakers(_Out):
    breakers: list[Breaker]


class PartnerHealth(_Out):
    partner_id: str
    name: str
    mode: str
    suspended: bool
    suspension: dict[str, Any] | None
    last_success_at: str | None
    last_inbound_at: str | None
    last_delivered_at: str | None
    failures: int
    dead: int
    queue: int
    breaker: Literal["open", "auto"]


class Partners(_Out):
    partners: list[PartnerHealth]


class PaymentsPage(_Out):
    payments: list[dict[str, Any]]
    next: str | None


class DiscrepanciesPage(_Out):
    discrepancies: list[dict[str, Any]]
    next: str | None


class ProposalOut(_Out):
    id: int
    action: str
    state: Literal["draft", "pending", "approved", "executed", "rejected", "expired", "failed"]
    maker: str
    editors: list[str]
    reason: str
    params: dict[str, Any]
    target_count: int
    targets: list[str]
    preview: dict[str, Any]
    created_at: str
    expires_at: str
    decided_by: str | None
    decided_at: str | None
    decision_note: str | None
    result: dict[str, Any] | None


class ProposalsPage(_Out):
    proposals: list[ProposalOut]
    next: str | None


class AuditRecord(_Out):
    id: int
    at: str
    actor: str
    issuer: str
    roles: list[str]
    action: str
    method: str
    path: str
    targets: list[str]
    client_ip: str
    reason: str | None
    outcome: Literal["ok", "denied", "invalid", "failed"]
    status: int
    detail: str | None
    unmasked: bool
    proposal_id: int | None


class AuditPage(_Out):
    records: list[AuditRecord]
    next: str | None


def _doc(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}}


# -- messages ------------------------------------------------------------------------------------

@router.get("/messages", name="messages.search", responses=_doc(MessagesPage),
            summary="Search messages (newest first)")
async def search_messages(
    request: Request, ctx: Viewer, partner_id: Name = None, type: Name = None,
    direction: Annotated[Literal["in", "out"] | None, Query()] = None, state: Name = None,
    received_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    received_to: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    correlation_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    payment_id: Annotated[str | None, Query(min_length=1, max_length=35)] = None,
    cursor: Cursor = None, limit: Limit = 100,
) -> dict[str, Any]:
    f = q.MessageFilter(partner_id=partner_id, type=type, direction=direction, state=state,
                        received_from=received_from, received_to=received_to,
                        correlation_id=correlation_id, payment_id=payment_id)
    return await _svc(request).messages(ctx, f, cursor=cursor, limit=limit)


@router.get("/messages/{message_id}", name="messages.get", responses=_doc(MessageDetail),
            summary="A message's whole evidence: wire bytes, signature, receipt, delivery, "
                    "processing")
async def get_message(message_id: Id, request: Request, ctx: Viewer,
                      unmasked: Unmasked = False) -> dict[str, Any]:
    return await _svc(request).message(ctx, message_id, unmasked=unmasked)


# -- outbox and breakers -------------------------------------------------------------------------

@router.get("/outbox", name="outbox.depth", responses=_doc(Depth),
            summary="Outbox depth and oldest age per destination and kind")
async def outbox_depth(request: Request, ctx: Viewer) -> dict[str, Any]:
    return await _svc(request).outbox_depth(ctx)


@router.get("/outbox/dead", name="outbox.dead", responses=_doc(DeadPage),
            summary="Dead letters (newest first) with their sanitised last error")
async def dead_letters(request: Request, ctx: Viewer, kind: Name = None,
                       destination: Name = None, cursor: Cursor = None,
                       limit: Limit = 100) -> dict[str, Any]:
    return await _svc(request).dead_letters(ctx, kind=kind, destination=destination,
                                            cursor=cursor, limit=limit)


class _In(BaseModel):
    """A request body: no unknown fields, and the exact JSON types (``true`` is not the case
    id 1, ``"5"`` not 5: a lax model would act on what the caller did not write)."""
    model_config = ConfigDict(extra="forbid", strict=True)


@router.get("/breakers", name="breakers.list", responses=_doc(Breakers),
            summary="Manual circuit-breaker states per destination")
async def list_breakers(request: Request, ctx: Viewer) -> dict[str, Any]:
    return await _svc(request).breakers(ctx)


class BreakerIn(_In):
    state: Literal["open", "closed"] = Field(description="open: no dispatcher claims its "
                                             "work; closed: lift it and reset the automatic "
                                             "breaker")
    reason: Reason


@router.post("/breakers/{destination}", name="breakers.set", responses=_doc(BreakerSet),
             summary="Open or close a destination's breaker by hand (every dispatcher)")
async def set_breaker(destination: Annotated[str, Path(max_length=64)], body: BreakerIn,
                      request: Request, ctx: Operator) -> dict[str, Any]:
    return await _svc(request).set_breaker(ctx, destination, body.state, body.reason)


# -- partners ------------------------------------------------------------------------------------

@router.get("/partners", name="partners.list", responses=_doc(Partners),
            summary="Partner health: last success, failures, breaker, queue")
async def list_partners(request: Request, ctx: Viewer) -> dict[str, Any]:
    return await _svc(request).partners(ctx)


class ReasonIn(_In):
    reason: Reason


@router.post("/partners/{partner_id}/suspend", name="partners.suspend",
             responses=_doc(Suspended),
             summary="Suspend a partner at once (every gateway process within seconds)")
async def suspend_partner(partner_id: Annotated[str, Path(max_length=40)], body: ReasonIn,
                          request: Request, ctx: Operator) -> dict[str, Any]:
    return await _svc(request).suspend_partner(ctx, partner_id, body.reason)


class ResumeIn(ReasonIn):
    expires_in_hours: float | None = Field(default=None, gt=0, le=24 * 30)


@router.post("/partners/{partner_id}/resume", name="partners.resume", status_code=201,
             responses=_doc(ProposalOut, 201),
             summary="Propose resuming a suspended partner (four eyes)")
async def resume_partner(partner_id: Annotated[str, Path(max_length=40)], body: ResumeIn,
                         request: Request, ctx: Operator) -> JSONResponse:
    view = await _svc(request).propose(
        ctx, "resume_partner", {"partner_id": partner_id}, reason=body.reason, draft=False,
        expires_in=_hours(body.expires_in_hours))
    return JSONResponse(view, status_code=201)


# -- partner keys --------------------------------------------------------------------------------

PartnerId = Annotated[str, Path(max_length=40)]
Kid = Annotated[str, Path(min_length=1, max_length=200)]


class PartnerKey(_Out):
    kid: str
    partner_id: str
    state: Literal["added", "active", "retired"] = Field(
        description="added and active keys verify new messages; retired ones only old records")
    jwk: dict[str, Any]
    verifies_new_messages: bool
    not_before: str | None
    expires_at: str | None
    days_to_expiry: float | None
    added_by: str
    added_at: str
    activated_by: str | None
    activated_at: str | None
    retired_by: str | None
    retired_at: str | None
    retirable: bool
    retire_blocked_by: str | None


class PartnerKeys(_Out):
    partner_id: str
    keys: list[PartnerKey]
    propagation_seconds: float = Field(description="every gateway process uses a change "
                                                   "within this many seconds")
    retire_overlap_hours: float


class PartnerKeyChanged(PartnerKey):
    effective_everywhere_by: str = Field(description="when every gateway process uses it")


class PartnerKeyIn(_In):
    jwk: dict[str, Any] = Field(description="the partner's new public JWK: OKP/Ed25519 or "
                                            "EC/P-256, with a kid never used before")
    reason: Reason
    # A date-time arrives as a JSON string, which a strict field would refuse.
    not_before: AwareDatetime | None = Field(default=None, strict=False,
                                             description="not activated before")
    expires_at: AwareDatetime | None = Field(default=None, strict=False,
                                             description="when it is to be replaced "
                                             "(default: the JWK's exp, if any)")


@router.get("/partners/{partner_id}/keys", name="keys.list", responses=_doc(PartnerKeys),
            summary="A partner's keys with their rotation state and days to expiry (admin)")
async def list_partner_keys(partner_id: PartnerId, request: Request,
                            ctx: KeyAdmin) -> dict[str, Any]:
    return await _svc(request).partner_keys(ctx, partner_id)


@router.post("/partners/{partner_id}/keys", name="keys.add", status_code=201,
             responses=_doc(PartnerKeyChanged, 201),
             summary="Add a partner's new public key: it verifies (every process within "
                     "seconds) before anyone activates it (admin)")
async def add_partner_key(partner_id: PartnerId, body: PartnerKeyIn, request: Request,
                          ctx: KeyAdmin) -> JSONResponse:
    view = await _svc(request).add_partner_key(ctx, partner_id, body.jwk, reason=body.reason,
                                               not_before=body.not_before,
                                               expires_at=body.expires_at)
    return JSONResponse(view, status_code=201)


@router.post("/partners/{partner_id}/keys/{kid}/activate", name="keys.activate",
             responses=_doc(PartnerKeyChanged),
             summary="Make an added key the partner's current key; starts the overlap before "
                     "its predecessors may be retired (admin)")
async def activate_partner_key(partner_id: PartnerId, kid: Kid, body: ReasonIn,
                               request: Request, ctx: KeyAdmin) -> dict[str, Any]:
    return await _svc(request).activate_partner_key(ctx, partner_id, kid, reason=body.reason)


@router.post("/partners/{partner_id}/keys/{kid}/retire", name="keys.retire", status_code=201,
             responses=_doc(ProposalOut, 201),
             summary="Propose retiring a key (four eyes), once a successor has been active "
                     "for the overlap (admin)")
async def retire_partner_key(partner_id: PartnerId, kid: Kid, body: ResumeIn,
                             request: Request, ctx: KeyAdmin) -> JSONResponse:
    view = await _svc(request).propose(
        ctx, "retire_key", {"partner_id": partner_id, "kid": kid}, reason=body.reason,
        draft=False, expires_in=_hours(body.expires_in_hours))
    return JSONResponse(view, status_code=201)


# -- payments ------------------------------------------------------------------------------------

@router.get("/payments", name="payments.list", responses=_doc(PaymentsPage),
            summary="Payments (newest first)")
async def list_payments(
    request: Request, ctx: Viewer, state: Name = None, rail: Name = None,
    partner_id: Name = None, claim_ref: Annotated[str | None, Query(max_length=64)] = None,
    pension_ref: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    created_to: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    cursor: Cursor = None, limit: Limit = 100, unmasked: Unmasked = False,
) -> dict[str, Any]:
    where = PaymentFilter(state=state, rail=rail, partner_id=partner_id, claim_ref=claim_ref,
                          pension_ref=pension_ref, created_from=created_from,
                          created_to=created_to)
    return await _svc(request).payments_page(ctx, where, cursor=cursor, limit=limit,
                                             unmasked=unmasked)


@router.get("/payments/{payment_id}", name="payments.get", responses=_doc(PaymentDetail),
            summary="A payment with every transition and cause, and its discrepancies")
async def get_payment(payment_id: Annotated[str, Path(max_length=35)], request: Request,
                      ctx: Viewer, unmasked: Unmasked = False) -> dict[str, Any]:
    return await _svc(request).payment(ctx, payment_id, unmasked=unmasked)


@router.get("/discrepancies", name="discrepancies.list", responses=_doc(DiscrepanciesPage),
            summary="Rail reports that contradicted the record (newest first)")
async def list_discrepancies(
    request: Request, ctx: Viewer,
    state: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    payment_id: Annotated[str | None, Query(max_length=35)] = None,
    cursor: Cursor = None, limit: Limit = 100,
) -> dict[str, Any]:
    return await _svc(request).discrepancies(ctx, state=state, payment_id=payment_id,
                                             cursor=cursor, limit=limit)


# -- reconciliation ------------------------------------------------------------------------------

class ReconRunsPage(_Out):
    runs: list[dict[str, Any]]
    next: str | None


class ReconRun(_Out):
    run_id: str
    rail: str
    business_date: str
    verdict: Literal["balanced", "discrepancies", "incomplete"]
    summary: dict[str, Any]
    manifest: dict[str, Any]


class ReconItemsPage(_Out):
    items: list[dict[str, Any]] = Field(description="in statement order, then ledger order")
    next: str | None = Field(description="the last item's seq: pass it as `cursor`")


class ReconCase(_Out):
    id: int
    rail: str
    kind: str
    state: Literal["open", "closed"]
    subject: str
    payment_id: str | None
    amount: dict[str, Any]
    reason_code: str | None
    action: str
    priority: Literal["high", "normal"]
    age_days: int
    due_on: str
    overdue: bool
    closed_note: str | None
    resolution: dict[str, Any] | None = Field(description="outcome, by (the maker), at and "
                                              "proposal_id when ops closed it")


class ReconCasesPage(_Out):
    cases: list[ReconCase]
    next: str | None


RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{20}$", description="a run's id")]
Rail = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
ItemKindQ = Annotated[str | None, Query(pattern="^(" + "|".join(k.value for k in ItemKind)
                                              + ")$", description="an item kind")]
CaseKindQ = Annotated[str | None, Query(pattern="^(" + "|".join(sorted(k.value for k in
                                                                       CASE_KINDS)) + ")$",
                                        description="a case kind")]


@router.get("/reconciliation/runs", name="reconciliation.runs", responses=_doc(ReconRunsPage),
            summary="Reconciliation runs (newest first)")
async def list_recon_runs(
    request: Request, ctx: Viewer, rail: Rail = None,
    date: Annotated[CalendarDate | None, Query(description="business date, YYYY-MM-DD")]
    = None, cursor: Cursor = None, limit: Limit = 100,
) -> dict[str, Any]:
    return await _svc(request).recon_runs(ctx, rail=rail, day=date, cursor=cursor, limit=limit)


@router.get("/reconciliation/runs/{run_id}", name="reconciliation.run",
            responses=_doc(ReconRun), summary="A run with its summary and manifest")
async def get_recon_run(run_id: RunId, request: Request, ctx: Viewer) -> dict[str, Any]:
    return await _svc(request).recon_run(ctx, run_id)


@router.get("/reconciliation/runs/{run_id}/items", name="reconciliation.items",
            responses=_doc(ReconItemsPage), summary="A run's items in statement order")
async def list_recon_items(run_id: RunId, request: Request, ctx: Viewer,
                           kind: ItemKindQ = None, cursor: Cursor = None,
                           limit: Limit = 100) -> dict[str, Any]:
    return await _svc(request).recon_items(ctx, run_id, kind=kind, cursor=cursor, limit=limit)


@router.get("/reconciliation/cases", name="reconciliation.cases",
            responses=_doc(ReconCasesPage), summary="Reconciliation cases (newest first)")
async def list_recon_cases(
    request: Request, ctx: Viewer,
    state: Annotated[Literal["open", "closed"] | None, Query()] = None,
    kind: CaseKindQ = None, rail: Rail = None, cursor: Cursor = None, limit: Limit = 100,
) -> dict[str, Any]:
    return await _svc(request).recon_cases(ctx, state=state, kind=kind, rail=rail,
                                           cursor=cursor, limit=limit)


@router.get("/reconciliation/cases/{case_id}", name="reconciliation.case",
            responses=_doc(ReconCase), summary="A reconciliation case, its payment and how "
                                               "it was resolved")
async def get_recon_case(case_id: Id, request: Request, ctx: Viewer) -> dict[str, Any]:
    return await _svc(request).recon_case(ctx, case_id)


# -- evidence ------------------------------------------------------------------------------------

class EvidenceReport(_Out):
    ok: bool
    checked: int = Field(description="chained records recomputed and found good")
    broken: str | None = Field(description="the first problem, naming the record")
    unchained: int = Field(description="records older than the settle window not in the chain")
    tables: dict[str, int] = Field(description="records checked, per chained table")
    payments: dict[str, int] = Field(description=(
        "compared: payments whose state, payout account and other changing columns are "
        "what their newest event recorded; uncompared: those whose newest event predates "
        "that record (migration 0016)"))
    pension_schedules: dict[str, int] = Field(description=(
        "the same for pension schedules: compared, uncompared (newest event before "
        "migration 0017)"))
    head: dict[str, Any] | None
    signatures: dict[str, Any] | None = None


@router.get("/evidence/verify", name="evidence.verify", responses=_doc(EvidenceReport),
            summary="Verify the evidence chain now (auditor): every record's digest and every "
                    "link recomputed")
async def verify_evidence(
    request: Request, ctx: Auditor,
    signatures: Annotated[bool, Query(description="also check every record's partner and "
                                                  "hub signatures")] = False,
    settle_minutes: Annotated[float, Query(ge=0, le=24 * 60, description="records younger "
                                           "than this may still be unchained")] = 5,
) -> dict[str, Any]:
    return await _svc(request).verify_evidence(ctx, signatures=signatures,
                                               settle=timedelta(minutes=settle_minutes))


# -- proposals -----------------------------------------------------------------------------------

class _ProposalIn(_In):
    reason: Reason
    draft: bool = Field(default=False, description="keep it a draft (not yet approvable)")
    expires_in_hours: float | None = Field(default=None, gt=0, le=24 * 30)


class ReplayIn(_ProposalIn):
    """Replay dead letters: these ids, or every dead letter of a kind and/or destination."""
    action: Literal["replay"]
    task_ids: list[Annotated[int, Field(ge=1, le=strictjson.MAX_INT)]] | None = Field(
        default=None, min_length=1, max_length=500)
    kind: str | None = Field(default=None, max_length=40)
    destination: str | None = Field(default=None, max_length=64)


class SkipIn(_ProposalIn):
    """Skip a dead letter that blocks its case (its work is never done)."""
    action: Literal["skip"]
    task_id: int = Field(ge=1, le=strictjson.MAX_INT)


class ResumePartnerIn(_ProposalIn):
    action: Literal["resume_partner"]
    partner_id: str = Field(max_length=40)


class _Outcome(_ProposalIn):
    outcome: Literal["paid", "failed", "reask"]
    rail_reference: str | None = Field(default=None, min_length=1, max_length=128)


class ResolveDiscrepancyIn(_Outcome):
    action: Literal["resolve_discrepancy"]
    discrepancy_id: int = Field(ge=1, le=strictjson.MAX_INT)


class ResolvePaymentIn(_Outcome):
    """Settle a payment whose outcome is unknown."""
    action: Literal["resolve_payment"]
    payment_id: str = Field(min_length=1, max_length=35)


class CancelPaymentsIn(_ProposalIn):
    """Ask the rail to cancel payments that may be at it (or cancel never-sent ones)."""
    action: Literal["cancel_payments"]
    payment_ids: list[Annotated[str, Field(min_length=1, max_length=35)]] = Field(
        min_length=1, max_length=500)


class ResolveReconCaseIn(_ProposalIn):
    """Close a reconciliation case with an outcome that fits its kind (docs/admin.md)."""
    action: Literal["resolve_recon_case"]
    case_id: int = Field(ge=1, le=strictjson.MAX_INT)
    outcome: Literal["explained", "written_off", "paid", "failed", "reask",
                     "new_beneficiary_details"]
    note: str | None = Field(default=None, min_length=1, max_length=2000,
                             description="why (needed for explained and written_off)")
    rail_reference: str | None = Field(default=None, min_length=1, max_length=128)


ProposalIn = Annotated[ReplayIn | SkipIn | ResumePartnerIn | ResolveDiscrepancyIn
                       | ResolvePaymentIn | CancelPaymentsIn | ResolveReconCaseIn,
                       Field(discriminator="action")]
_COMMON = {"action", "reason", "draft", "expires_in_hours"}


def _hours(hours: float | None) -> timedelta | None:
    return timedelta(hours=hours) if hours is not None else None


@router.post("/proposals", name="proposals.create", status_code=201,
             responses=_doc(ProposalOut, 201),
             summary="Propose an action (maker); its targets are frozen now")
async def create_proposal(body: ProposalIn, request: Request, ctx: Operator) -> JSONResponse:
    params = body.model_dump(exclude=_COMMON, exclude_none=True)
    if isinstance(body, ReplayIn) and (body.task_ids is None) == (
            body.kind is None and body.destination is None):
        raise _bad("give task_ids, or kind and/or destination, not both")
    if isinstance(body, _Outcome | ResolveReconCaseIn) and body.outcome == "paid" \
            and not body.rail_reference:
        raise _bad("rail_reference: marking paid needs the rail's reference")
    view = await _svc(request).propose(ctx, body.action, params, reason=body.reason,
                                       draft=body.draft,
                                       expires_in=_hours(body.expires_in_hours))
    return JSONResponse(view, status_code=201)


def _bad(detail: str) -> ProblemError:
    return InvalidMessageError("schema_violation", detail)


@router.get("/proposals", name="proposals.list", responses=_doc(ProposalsPage),
            summary="Proposals (newest first)")
async def list_proposals(
    request: Request, ctx: Viewer,
    state: Annotated[Literal["draft", "pending", "approved", "executed", "rejected",
                             "expired", "failed"] | None, Query()] = None,
    action: Name = None, cursor: Cursor = None, limit: Limit = 100,
) -> dict[str, Any]:
    return await _svc(request).proposals(ctx, state=state, action=action, cursor=cursor,
                                         limit=limit)


@router.get("/proposals/{proposal_id}", name="proposals.get", responses=_doc(ProposalOut),
            summary="A proposal with its frozen targets and preview")
async def get_proposal(proposal_id: Id, request: Request, ctx: Viewer) -> dict[str, Any]:
    return await _svc(request).proposal(ctx, proposal_id)


@router.patch("/proposals/{proposal_id}", name="proposals.edit", responses=_doc(ProposalOut),
              summary="Edit an open proposal's reason (the editor can no longer approve it)")
async def edit_proposal(proposal_id: Id, body: ReasonIn, request: Request,
                        ctx: Operator) -> dict[str, Any]:
    return await _svc(request).edit(ctx, proposal_id, body.reason)


@router.post("/proposals/{proposal_id}/submit", name="proposals.submit",
             responses=_doc(ProposalOut), summary="Put a draft up for approval")
async def submit_proposal(proposal_id: Id, request: Request, ctx: Operator) -> dict[str, Any]:
    return await _svc(request).submit(ctx, proposal_id)


class DecisionIn(_In):
    note: str | None = Field(default=None, max_length=2000)


@router.post("/proposals/{proposal_id}/approve", name="proposals.approve",
             responses=_doc(ProposalOut),
             summary="Approve a pending proposal and execute it (approver, not its maker or "
                     "an editor)")
async def approve_proposal(proposal_id: Id, request: Request, ctx: Approver,
                           body: DecisionIn | None = None) -> dict[str, Any]:
    return await _svc(request).approve(ctx, proposal_id, body.note if body else None)


class RejectIn(_In):
    note: Reason


@router.post("/proposals/{proposal_id}/reject", name="proposals.reject",
             responses=_doc(ProposalOut), summary="Reject a proposal (approver)")
async def reject_proposal(proposal_id: Id, body: RejectIn, request: Request,
                          ctx: Approver) -> dict[str, Any]:
    return await _svc(request).reject(ctx, proposal_id, body.note)


# -- audit ---------------------------------------------------------------------------------------

def _audit_filter(actor: str | None, action: str | None, outcome: str | None,
                  at_from: Any, at_to: Any) -> q.AuditFilter:
    return q.AuditFilter(actor=actor, action=action, outcome=outcome, at_from=at_from,
                         at_to=at_to)


AuditOutcome = Annotated[Literal["ok", "denied", "invalid", "failed"] | None, Query()]
Actor = Annotated[str | None, Query(min_length=1, max_length=200)]
From = Annotated[AwareDatetime | None, Query(alias="from")]
To = Annotated[AwareDatetime | None, Query(alias="to")]


@router.get("/audit", name="audit.list", responses=_doc(AuditPage),
            summary="The audit trail (auditor; newest first)")
async def list_audit(request: Request, ctx: Auditor, actor: Actor = None,
                     action: Name = None, outcome: AuditOutcome = None,
                     at_from: From = None, at_to: To = None, cursor: Cursor = None,
                     limit: Limit = 100) -> dict[str, Any]:
    f = _audit_filter(actor, action, outcome, at_from, at_to)
    return await _svc(request).audit(ctx, f, cursor=cursor, limit=limit)


@router.get("/audit/export", name="audit.export",
            responses={200: {"content": {"application/x-ndjson": {}},
                             "description": "one audit record per line in commit-safe "
                                            "order; the last line is {\"next\": cursor}"}},
            summary="Export the audit trail as NDJSON (auditor), resumable with `after`")
async def export_audit(request: Request, ctx: Auditor, actor: Actor = None,
                       action: Name = None, outcome: AuditOutcome = None,
                       at_from: From = None, at_to: To = None,
                       after: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    f = _audit_filter(actor, action, outcome, at_from, at_to)
    q.export_cursor(after)  # a bad cursor is a 422 before the stream starts

    async def lines() -> AsyncIterator[bytes]:
        async for item in _svc(request).audit_export(ctx, f, after=after):
            yield orjson.dumps(item) + b"\n"
    return StreamingResponse(lines(), media_type="application/x-ndjson")
