"""The hub's long-lived parts, built once per process and shared by requests and jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapter_registry import partner_adapters
from gateway.clock import Clock, utcnow
from gateway.config import Settings
from gateway.messages.delivery import DeliveryHandler
from gateway.messages.intake import Intake
from gateway.messages.outbound import Outbound
from gateway.messages.processing import PROCESSORS, InboundProcessor
from gateway.messages.tracking import PAYMENT_SOURCES
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.dispatcher import Dispatcher, Handler
from gateway.partner_processing import install_partner_processors
from gateway.payments import Payments
from gateway.payments.processors import install_payment_processors
from gateway.payments.tracking import install_payment_tracking
from gateway.ports.partner import PartnerAdapter
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer
from gateway.protocol.partners import PartnerRegistry, load_registry
from gateway.protocol.signing import Signer
from gateway.storage.engine import create_engine
from gateway.storage.uow import UnitOfWork

__all__ = ["Hub", "build_hub"]

install_partner_processors(PROCESSORS)
install_payment_processors(PROCESSORS)
install_payment_tracking(PAYMENT_SOURCES)


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    registry: PartnerRegistry
    signer: Signer
    adapters: dict[str, PartnerAdapter]
    clock: Clock = utcnow
    intake: Intake = field(init=False)
    outbound: Outbound = field(init=False)
    payments: Payments = field(init=False)
    # One HTTP client for partner deliveries (timeouts are per request, from the registry).
    partner_http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.outbound = Outbound(self.registry, self.adapters, self.signer)
        self.partner_http = httpx.AsyncClient(follow_redirects=False)
        self.intake = Intake(
            self.registry, self.adapters, self.signer, self.uow,
            max_body_bytes=self.settings.max_body_bytes,
            max_age=timedelta(seconds=self.settings.max_message_age_seconds),
            max_skew=timedelta(seconds=self.settings.max_clock_skew_seconds),
            clock=self.clock,
        )
        self.payments = Payments(self.settings, self.engine, self.outbound, self.clock)

    def uow(self, *, single_statement: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, single_statement=single_statement)

    def handlers(self) -> dict[str, Handler]:
        """Every kind of outbox work this hub does, by kind."""
        handlers: list[Handler] = [
            InboundProcessor(self.engine, self.outbound, self.clock),
            DeliveryHandler(self.engine, self.registry, self.adapters, self.partner_http,
                            self.clock),
            *self.payments.handlers(),
        ]
        return {h.kind: h for h in handlers}

    def dispatcher(self, **options: object) -> Dispatcher:
        options.setdefault("breakers", CircuitBreakers(
            cooldown=self.settings.breaker_cooldown_seconds))
        return Dispatcher(self.engine, self.handlers(), clock=self.clock, **options)  # type: ignore[arg-type]

    async def ping_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.payments.close()
        await self.partner_http.aclose()
        await self.engine.dispose()


def build_hub(settings: Settings, clock: Clock = utcnow) -> Hub:
    """Load keys and registry (validated) and create the engine; no I/O on the database yet."""
    adapters = partner_adapters()
    registry = load_registry(settings.partners_file, frozenset(adapters))
    signer = load_signer(settings.signing_key_file, HUB_PARTY)
    engine = create_engine(settings.database_url, settings.db_pool_size)
    return Hub(settings, engine, registry, signer, adapters, clock)
