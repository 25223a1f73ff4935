"""The partner adapter seam: translate a partner's wire format to and from PX/1 envelopes.

An adapter is the only code that knows a partner's format and transport. It never touches the
database and never decides to retry. Signatures are checked by the hub over the exact bytes
received *before* an adapter sees them; an adapter only translates, and (push partners)
carries the hub's signed wire bytes to the partner's endpoint.

Both directions use the same codec: ``decode`` reads the partner's wire bytes into canonical
envelopes, ``encode`` writes a canonical envelope in the partner's format. The hub uses
``encode`` for its own messages; the partner's simulator uses it for the partner's messages,
so ``decode(encode(envelope))`` is the identity for every message type (property-tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from gateway.errors import ProblemError

__all__ = ["DecodedItem", "DeliveryAnswer", "ItemResult", "PartnerAdapter"]


@dataclass(frozen=True, slots=True)
class DeliveryAnswer:
    """A partner's 2xx answer to a pushed message: its receipt, as sent."""

    body: bytes
    signature: str | None  # the partner's detached JWS over ``body``
    media_type: str


@dataclass(frozen=True, slots=True)
class DecodedItem:
    """One message found in a partner's request body."""

    wire: bytes  # this message's exact bytes as received (the body, or one batch line)
    envelope: bytes | None  # the canonical PX/1 envelope (JSON bytes), if it translated
    error: ProblemError | None = None  # why it did not translate
    line: int | None = None  # 1-based position in a batch


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What the hub answers about one decoded item."""

    status: str  # "accepted", "duplicate" or "refused"
    message_id: str | None = None
    receipt: bytes | None = None  # rendered receipt bytes, as signed
    receipt_signature: str | None = None
    problem: dict[str, Any] | None = None
    line: int | None = None


class PartnerAdapter(Protocol):
    """A partner's wire format. Implementations live in ``adapters/partners/<name>/``."""

    name: str
    media_types: frozenset[str]  # what the partner may POST to /v1/messages
    wire_media_type: str  # the media type of ``encode``'s output (one message)
    receipt_media_type: str  # the media type of rendered receipts and batch results
    batch: bool  # True if one request may carry several messages

    def decode(self, wire: bytes) -> list[DecodedItem]:
        """Split and translate a request body into canonical envelopes.

        Returns:
            One item per message; an item that cannot be translated carries its error.

        Raises:
            InvalidMessageError: if the body as a whole cannot be read.
        """
        ...

    def encode(self, envelope: bytes) -> bytes:
        """Translate a canonical envelope (JSON bytes) into the partner's wire bytes.

        Raises:
            InvalidMessageError: schema_violation if a value cannot be written in the
                partner's format (e.g. a date outside the Bikram Sambat table).
        """
        ...

    def render_receipt(self, receipt: dict[str, Any]) -> bytes:
        """Render a canonical receipt in the form the partner verifies."""
        ...

    def parse_receipt(self, body: bytes) -> dict[str, Any]:
        """Parse a partner's delivery receipt (its wire form) into a canonical receipt dict.

        Raises:
            InvalidMessageError: schema_violation if it is not a receipt.
        """
        ...

    def render_batch(self, results: Sequence[ItemResult]) -> bytes:
        """Render the per-message results of a batch request (batch adapters only)."""
        ...

    async def deliver(
        self, client: httpx.AsyncClient, endpoint: str, wire: bytes, signature: str, *,
        timeout: float,
    ) -> DeliveryAnswer:
        """Push one signed hub message (its exact wire bytes) to the partner's endpoint.

        Args:
            client: the hub's shared HTTP client.
            endpoint: the partner's configured endpoint.
            wire: the bytes ``encode`` produced and the hub signed.
            signature: the hub's detached JWS over ``wire``.
            timeout: seconds for the whole exchange (the registry's ``timeout_seconds``).

        Returns:
            The partner's 2xx answer; the hub verifies and parses it (``parse_receipt``).

        Raises:
            TransientDeliveryError, OutcomeUnknownError, PermanentDeliveryError.
        """
        ...
