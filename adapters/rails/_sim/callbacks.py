"""Signed status callbacks from a simulator to the hub, with limited retries and faults.

Callbacks are queued from any thread (the ledger advances on a timer inside the server loop, or
explicitly from a test thread) and delivered by one worker task in the server's event loop, in
order. A callback is retried ``attempts`` times with exponential backoff on a non-2xx answer or a
transport error, then given up (counted in ``failed``), like a real rail's webhook delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

import httpx

from adapters.simulation import Fault, Faults

__all__ = ["CallbackSender"]

Signer = Callable[[bytes], dict[str, str]]


class CallbackSender:
    """Deliver callbacks from the simulator's event loop; counters are for tests."""

    def __init__(
        self,
        faults: Faults,
        sign: Signer,
        *,
        attempts: int = 3,
        timeout: float = 2.0,
        backoff: float = 0.05,
        content_type: str = "application/json",
    ) -> None:
        self.faults = faults
        self.sign = sign
        self.attempts = attempts
        self.timeout = timeout
        self.backoff = backoff
        self.content_type = content_type
        self.delivered = 0  # deliveries answered 2xx (a duplicated callback counts twice)
        self.failed = 0  # callbacks given up after all attempts
        self.lost = 0  # callbacks dropped by the lost_callback fault
        self._lock = threading.Lock()
        self._pending = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Start the worker in the running loop (the app's lifespan)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker; undelivered callbacks are dropped like a crashed rail's."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        self._loop = self._queue = self._task = self._client = None

    def enqueue(self, url: str, body: bytes) -> None:
        """Queue one callback; safe from any thread. Ignored while the server is not running."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return
        with self._lock:
            self._pending += 1
        loop.call_soon_threadsafe(queue.put_nowait, (url, body))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block (bounded) until every queued callback is delivered or given up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.01)
        return False

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            url, body = await self._queue.get()
            try:
                if self.faults.draw(Fault.lost_callback, url, "POST"):
                    self.lost += 1
                    continue
                copies = 2 if self.faults.draw(Fault.duplicate_callback, url, "POST") else 1
                for _ in range(copies):
                    await self._deliver(url, body)
            finally:
                with self._lock:
                    self._pending -= 1

    async def _deliver(self, url: str, body: bytes) -> None:
        assert self._client is not None
        for attempt in range(self.attempts):
            # Signed afresh per attempt so a retry late in the backoff is not stale.
            headers = {"Content-Type": self.content_type, **self.sign(body)}
            try:
                response = await self._client.post(
                    url, content=body, headers=headers, timeout=self.timeout
                )
                if 200 <= response.status_code < 300:
                    self.delivered += 1
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(self.backoff * 2**attempt)
        self.failed += 1
