"""The composition root: builds the hub from settings, with every table of who does what.

This is the one module of ``gateway`` (besides the ``sandbox`` tooling) that imports
``adapters``: the adapter tables below say which implementation serves a registry entry's
``adapter`` or a rails file's ``adapter``. The routing tables say which processor handles each
inbound message type and which sources feed a tracking thread. All of them are plain literals
read at build time: nothing is registered by importing a module, and adding a partner format,
a rail or a message type is one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.partners.mm_ssb import MmSsbAdapter
from adapters.partners.np_feb import NpFebAdapter
from adapters.partners.pk_mophrd import PkMophrdAdapter
from adapters.partners.px1 import Px1Adapter
from adapters.rails import rail_client
from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
from adapters.rails.merchantrade import MerchantradeConfig, MerchantradeRail
from gateway.admin.api import AdminApi
from gateway.admin.audit import TrustedProxies
from gateway.admin.auth import build_verifier
from gateway.admin.service import AdminService
from gateway.backoffice.service import BackofficeService
from gateway.claims.processors import process_claim_notify, process_document_deliver
from gateway.clock import Clock, utcnow
from gateway.config import Settings
from gateway.evidence.checkpoints import hub_verification_keys
from gateway.messages.acks import process_receipt_ack
from gateway.messages.delivery import DeliveryHandler
from gateway.messages.intake import Intake
from gateway.messages.outbound import Outbound
from gateway.messages.partner_cancel import process_message_cancel
from gateway.messages.partner_keys import PartnerKeys
from gateway.messages.partner_reads import PartnerReads
from gateway.messages.processing import InboundProcessor
from gateway.messages.suspensions import Suspensions
from gateway.observability import sources
from gateway.observability.metrics import Observer
from gateway.observability.state import StateCollector, StateContext, StateSource
from gateway.observability.tracing import NO_TRACING, Tracing
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.dispatcher import INTERNAL_DESTINATIONS, Dispatcher
from gateway.outbox.handlers import Handler
from gateway.outbox.overrides import BreakerOverrides
from gateway.payments import Payments
from gateway.payments import processors as payment_processors
from gateway.payments.rails import RailKind
from gateway.payments.tracking import thread_payments
from gateway.ports.partner import PartnerAdapter
from gateway.ports.processing import PaymentSource, Processor
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer
from gateway.protocol.partners import PartnerRegistry, load_registry
from gateway.protocol.signing import Signer
from gateway.reconciliation.schedule import Reconciler
from gateway.reconciliation.service import ReconciliationService
from gateway.storage.engine import create_engine
from gateway.storage.uow import UnitOfWork

__all__ = [
    "PARTNER_ADAPTERS", "PAYMENT_SOURCES", "RAIL_KINDS", "Hub", "build_hub",
    "inbound_processors", "partner_adapters", "reconciler_for", "state_sources",
]

# A partner registry entry's ``adapter`` -> the implementation (stateless translators).
PARTNER_ADAPTERS: dict[str, Callable[[], PartnerAdapter]] = {
    "px1": Px1Adapter,
    "mm_ssb": MmSsbAdapter,
    "np_feb": NpFebAdapter,
    "pk_mophrd": PkMophrdAdapter,
}

# A rails file's ``adapter`` -> its typed config and the adapter built from it.
RAIL_KINDS: dict[str, RailKind] = {
    "merchantrade": RailKind(MerchantradeConfig, MerchantradeRail),
    "iso20022": RailKind(Iso20022Config, Iso20022Rail),
}

# Sources of a tracking thread's payments (GET /v1/tracking/{correlation_id}).
PAYMENT_SOURCES: tuple[PaymentSource, ...] = (thread_payments,)


def inbound_processors() -> dict[str, Processor]:
    """Who applies each inbound message type; a type not named here is recorded as processed
    (``payment.notice`` and the other hub-to-partner types never arrive inbound)."""
    return {
        "claim.notify": process_claim_notify,
        "document.deliver": process_document_deliver,
        "message.cancel": process_message_cancel,
        "receipt.ack": process_receipt_ack,
        "death.notify": payment_processors.death_notify,
        "life_certificate.submit": payment_processors.life_certificate_submit,
        "payment.confirm": payment_processors.payment_confirm,
        "beneficiary.update": payment_processors.beneficiary_update,
    }


def state_sources(signer: Signer, registry: PartnerRegistry) -> dict[str, StateSource]:
    """The scrape-time gauges' sources (``gateway.observability.state``), by name."""
    return {
        "outbox": sources.outbox_state,
        "payments": sources.payment_state(settled=False),
        "settled_payments": sources.payment_state(settled=True),
        "evidence_chain": sources.chain_state,
        "reconciliation": sources.reconciliation_state,
        "keys": sources.key_expiry(signer, registry),
    }


def partner_adapters() -> dict[str, PartnerAdapter]:
    """Instantiate every partner adapter once (they are stateless translators)."""
    return {name: factory() for name, factory in PARTNER_ADAPTERS.items()}


def _rail_http() -> httpx.AsyncClient:
    # RailTransport: a keep-alive pool whose per-request cost does not grow with the number of
    # connections (httpcore's does; see adapters/rails/_pool.py).
    return rail_client(max_connections=200)


@dataclass
class Hub:
    """The hub's long-lived parts, built once per process and shared by requests and jobs."""

    settings: Settings
    engine: AsyncEngine
    registry: PartnerRegistry
    signer: Signer
    adapters: dict[str, PartnerAdapter]
    clock: Clock = utcnow
    processors: Mapping[str, Processor] = field(default_factory=inbound_processors)
    payment_sources: Sequence[PaymentSource] = PAYMENT_SOURCES
    # Off unless the process started it (gateway.observability.tracing.start_tracing).
    tracing: Tracing = NO_TRACING
    intake: Intake = field(init=False)
    outbound: Outbound = field(init=False)
    payments: Payments = field(init=False)
    partner_reads: PartnerReads = field(init=False)
    backoffice: BackofficeService = field(init=False)
    reconciliation: ReconciliationService = field(init=False)
    # Operators' partner suspensions, read by intake and partner reads with a short cache.
    suspensions: Suspensions = field(init=False)
    # Partner keys as rotated through the admin API (the registry's file keys as bootstrap).
    partner_keys: PartnerKeys = field(init=False)
    admin: AdminApi = field(init=False)
    # One HTTP client for partner deliveries (timeouts are per request, from the registry).
    partner_http: httpx.AsyncClient = field(init=False)
    observer: Observer = field(init=False)
    state_metrics: StateCollector = field(init=False)

    def __post_init__(self) -> None:
        self.tracing.instrument_engine(self.engine)
        self.outbound = Outbound(self.registry, self.adapters, self.signer)
        self.suspensions = Suspensions(self.uow)
        self.partner_keys = PartnerKeys(self.uow, self.registry.keys,
                                        ttl=self.settings.partner_keys_cache_seconds)
        # The rails' keep-alive pool (adapters/rails/_pool.py): httpcore's own costs ~2 ms of
        # CPU per request at the connections a batch of deliveries keeps open.
        self.partner_http = self.tracing.instrument_client(
            rail_client(max_connections=100, follow_redirects=False))
        self.payments = Payments(self.settings, self.uow, self.outbound, self.clock,
                                 rail_kinds=RAIL_KINDS,
                                 http_factory=lambda: self.tracing.instrument_client(_rail_http()))
        partners = frozenset(p.id for p in self.registry)
        destinations = partners | frozenset(self.payments.rails) | INTERNAL_DESTINATIONS
        kinds = frozenset(self.handlers())
        self.observer = Observer(partners, destinations, kinds)
        self.state_metrics = StateCollector(
            self.uow, state_sources(self.signer, self.registry),
            lambda now: StateContext(now, destinations, kinds, frozenset(self.payments.rails)),
            ttl=self.settings.metrics_cache_seconds, clock=self.clock,
            # Settled payments only grow: counting them costs a scan of the table's history.
            ttls={"settled_payments": max(60.0, self.settings.metrics_cache_seconds)})
        self.intake = Intake(
            self.registry, self.adapters, self.signer, self.uow,
            max_body_bytes=self.settings.max_body_bytes,
            max_age=timedelta(seconds=self.settings.max_message_age_seconds),
            max_skew=timedelta(seconds=self.settings.max_clock_skew_seconds),
            clock=self.clock, on_outcome=self.observer.intake, suspensions=self.suspensions,
            keys=self.partner_keys,
        )
        self.partner_reads = PartnerReads(self.uow, self.registry, self.payment_sources,
                                          self.clock, self.suspensions, self.partner_keys)
        self.backoffice = BackofficeService(self.uow, self.payments.service, self.payments.rails,
                                            self.outbound, self.clock, self.registry)
        self.reconciliation = ReconciliationService(
            self.uow, self.payments.service, self.payments.rails,
            self.payments.config.settlements, self.clock, self.payments.http)
        self.admin = AdminApi(
            lambda: build_verifier(self.settings),
            AdminService(self.uow, self.registry, self.payments.service, self.payments.rails,
                         self.suspensions, self.clock,
                         timedelta(hours=self.settings.admin_proposal_ttl_hours),
                         lambda: hub_verification_keys(self.signer, self.registry),
                         keys=self.partner_keys,
                         key_overlap=timedelta(hours=self.settings.key_retire_overlap_hours)),
            TrustedProxies(self.settings.admin_trusted_proxies))

    def uow(self, *, single_statement: bool = False, read_only: bool = False) -> UnitOfWork:
        """A unit of work on the hub's database (this method is the hub's UnitOfWorkFactory)."""
        return UnitOfWork(self.engine, single_statement=single_statement, read_only=read_only)

    def handlers(self) -> dict[str, Handler]:
        """Every kind of outbox work this hub does, by kind."""
        handlers: list[Handler] = [
            InboundProcessor(self.uow, self.outbound, self.clock, self.processors,
                             self.payments.service.check_account),
            DeliveryHandler(self.uow, self.registry, self.adapters, self.partner_http,
                            self.clock, self.partner_keys),
            *self.payments.handlers(),
        ]
        return {h.kind: h for h in handlers}

    def dispatcher(self, **options: object) -> Dispatcher:
        options.setdefault("breakers", CircuitBreakers(
            cooldown=self.settings.breaker_cooldown_seconds))
        options.setdefault("observer", self.observer)
        options.setdefault("stop_grace", self.settings.dispatch_stop_grace_seconds)
        options.setdefault("overrides", BreakerOverrides(self.uow))
        options.setdefault("tracing", self.tracing)
        return Dispatcher(self.uow, self.handlers(), clock=self.clock, **options)  # type: ignore[arg-type]

    async def ping_database(self) -> None:
        async with self.uow(read_only=True) as uow:
            await uow.conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.payments.close()
        await self.partner_http.aclose()
        await self.engine.dispose()


class _ScheduledReconciler:
    """The scheduler's view of the reconciliation service (``schedule.Reconciler``)."""

    def __init__(self, service: ReconciliationService, tracing: Tracing = NO_TRACING) -> None:
        self._service = service
        self._tracing = tracing

    async def run(self, rail: str, day: date, *, final: bool = False) -> str:
        with self._tracing.span("reconcile", {"px.rail": rail,
                                              "px.business_date": day.isoformat()}) as span:
            verdict = (await self._service.run(rail, day, give_up=final)).verdict
            span.attribute("px.verdict", verdict)
            return verdict

    async def done(self, rail: str, day: date) -> bool:
        # Any recorded run counts, an incomplete one too: a corrected or late statement is an
        # operator's `gateway reconcile`, which supersedes it.
        return bool((await self._service.runs(rail, day, None, 1))["runs"])


def reconciler_for(hub: Hub) -> Reconciler:
    """The reconciliation engine that ``gateway scheduler`` runs."""
    return _ScheduledReconciler(hub.reconciliation, hub.tracing)


def build_hub(settings: Settings, clock: Clock = utcnow,
              processors: Mapping[str, Processor] | None = None,
              tracing: Tracing = NO_TRACING) -> Hub:
    """Load keys and registry (validated) and create the engine; no I/O on the database yet.

    ``processors`` replaces the routing table of ``inbound_processors()`` (tests inject
    failing processors through it). ``tracing``: the process's, if it started one.
    """
    adapters = partner_adapters()
    registry = load_registry(settings.partners_file, frozenset(adapters))
    signer = load_signer(settings.signing_key_file, HUB_PARTY)
    engine = create_engine(settings.database_url, settings.db_pool_size)
    if processors is None:
        return Hub(settings, engine, registry, signer, adapters, clock, tracing=tracing)
    return Hub(settings, engine, registry, signer, adapters, clock, processors,
               tracing=tracing)
