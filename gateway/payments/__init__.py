"""Payments: the state machine, instructions from the back office, payouts through rails.

domain.py      the payment state machine (plain Python)
requests.py    back-office request models (validated at the edge)
accounts.py    a rail's practice: the payout accounts it pays and the decimals it pays in
fx.py          conversion from MYR with the rate's source and time, explicit rounding
service.py     instruct, transition with cause, cancel, announce paid payments to partners
repository.py  SQL for payments and their events
payout.py      the ``payout`` outbox handler: submit once, resolve unknown outcomes, poll
callbacks.py   rail callbacks: verify, then apply through the state machine
pensions.py    periodic pensions: schedules, per-period payments, suspension and stop
processors.py  inbound partner messages about payments (death.notify, life certificates, ...)
rails.py       the rails configuration file
tracking.py    a partner's payments in its tracking thread, in the protocol's states
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from gateway.backoffice.auth import BackofficeTokens, load_tokens
from gateway.clock import Clock
from gateway.config import Settings
from gateway.payments.payout import PayoutHandler, PollSchedule
from gateway.payments.rails import RailKind, RailsConfig, load_rails
from gateway.payments.service import PaymentService
from gateway.ports.processing import OutboundSender
from gateway.storage.uow import UnitOfWorkFactory

if TYPE_CHECKING:
    from gateway.outbox.handlers import Handler

__all__ = ["HttpFactory", "Payments", "rails_file_of"]

HttpFactory = Callable[[], httpx.AsyncClient]


def rails_file_of(settings: Settings) -> Path | None:
    """GATEWAY_RAILS_FILE, or in development the ``rails.toml`` beside the partner registry."""
    if settings.rails_file is not None:
        return settings.rails_file
    beside = settings.partners_file.parent / "rails.toml"
    return beside if not settings.is_production and beside.exists() else None


class Payments:
    """The hub's payment parts: rails, back-office tokens, the service and the payout handler."""

    def __init__(self, settings: Settings, uow: UnitOfWorkFactory, outbound: OutboundSender,
                 clock: Clock, *, rail_kinds: Mapping[str, RailKind],
                 http_factory: HttpFactory) -> None:
        self.settings = settings
        self.uow = uow
        self.clock = clock
        self.config: RailsConfig = load_rails(rails_file_of(settings), rail_kinds)
        self.rails = self.config.rails
        tokens_file = settings.backoffice_tokens_file
        # Production refuses to start without the file (bootstrap); development without one
        # simply has no back-office client.
        self.tokens = load_tokens(tokens_file) if tokens_file.exists() else BackofficeTokens([])
        self.service = PaymentService(self.rails, outbound, self.config.max_amount,
                                      self.config.practices)
        self._http_factory = http_factory
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        """The one HTTP client for rail calls (each call sets its own explicit timeout)."""
        if self._http is None:
            self._http = self._http_factory()
        return self._http

    def handlers(self) -> list[Handler]:
        c = self.config
        polls = PollSchedule(c.poll_after_seconds, c.poll_max_seconds,
                             return_window=timedelta(days=c.return_window_days),
                             return_windows={k: timedelta(days=v)
                                             for k, v in c.return_windows.items()},
                             return_poll=c.return_poll_seconds)
        return [PayoutHandler(self.uow, self.rails, self.service, self.http, self.clock,
                              batch_size=self.config.batch_size, polls=polls)]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
