"""One dispatcher process for the chaos test: the production hub and Dispatcher, configured from
the environment (GATEWAY_*), with test-sized waits and a short lease so a killed process's work
is taken over within seconds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.composition import build_hub
from gateway.config import Settings
from gateway.outbox.breaker import CircuitBreakers
from gateway.outbox.dispatcher import Dispatcher
from gateway.outbox.retry import RetryPolicy


async def main() -> None:
    hub = build_hub(Settings())
    dispatcher = Dispatcher(
        hub.uow, hub.handlers(), batch=100, lease=timedelta(seconds=3), idle_sleep=0.05,
        policy=RetryPolicy(initial=0.05, max_delay=1.0, unknown_initial=0.05),
        breakers=CircuitBreakers(threshold=200, cooldown=0.3))
    try:
        await dispatcher.run(asyncio.Event())
    finally:
        await hub.close()


if __name__ == "__main__":
    asyncio.run(main())
