"""Per-partner rate limits: a token bucket per partner, in this process.

Each gateway process keeps its own buckets, so with N processes behind a load balancer a
partner's effective limit is N times the configured one; configure the per-process share
(documented in the README). A shared counter in the database would put a write on every
request's hot path for a limit that is about protecting the hub, not about money.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from gateway.errors import RateLimitedError

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # partner -> (tokens, last refill)
        self._lock = threading.Lock()
        self._now = monotonic

    def take(self, partner_id: str, per_minute: int | None) -> None:
        """Take one token for ``partner_id`` or raise RateLimitedError with Retry-After."""
        if per_minute is None:
            return
        rate = per_minute / 60.0
        with self._lock:
            now = self._now()
            tokens, last = self._buckets.get(partner_id, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[partner_id] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise RateLimitedError(
                    f"{partner_id} may send {per_minute} requests per minute", retry_after=wait
                )
            self._buckets[partner_id] = (tokens - 1.0, now)
