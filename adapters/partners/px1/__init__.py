"""PX/1 as is: the reference adapter (ID-BPJSTK, BD-WEWB, and any new PX/1 partner).

The wire bytes *are* the canonical envelope, so ``decode`` and ``encode`` pass bytes through
untouched: re-serialising would change bytes a signature covers (and could re-encode Bengali
or Burmese text). Receipts are compact UTF-8 JSON.

Wire profile: ``POST /v1/messages``, ``Content-Type: application/json``, body = the PX/1
envelope, ``X-JWS-Signature`` = detached JWS over the body. Push delivery: the hub POSTs the
same to the partner's endpoint and expects ``2xx`` with a signed PX/1 receipt (JSON) in the
body and its detached JWS in ``X-JWS-Signature``.
"""

from adapters.partners.px1.adapter import Px1Adapter
from adapters.partners.px1.config import Px1Config

__all__ = ["Px1Adapter", "Px1Config"]
