"""Merchantrade e-wallet payout rail (Malaysia).

Merchantrade publishes no payout API; this wire format is the gateway's own assumption
(partners.md), shaped like the public payout APIs (Xendit, bKash B2C, Razorpay):

Instruct: ``POST {base}/v1/payouts``, one payout per request, JSON (UTF-8)::

    {"account": "60123456789", "amount": "12.34", "beneficiary_name": "...",
     "currency": "MYR", "provider": "MTWALLET", "reference": "PERKESO ..."}

Headers: ``Idempotency-Key`` (derived from the payment id), ``X-Key-Id``, ``X-Timestamp``
(Unix seconds) and ``X-Signature`` = hex HMAC-SHA256(hmac_secret,
``timestamp "\\n" METHOD "\\n" path "\\n" body``) (``adapters.rails._hmac``). Answers: 201 (new) or
200 (same key, same body: the existing payout) with the payout JSON::

    {"idempotency_key": K, "rail_reference": "MT0000000001", "state": "accepted",
     "reason": null, "amount": "12.34", "currency": "MYR", "updated_at": "<ISO 8601 UTC>"}

409 for the same key with a different body; 401 bad signature; 422 invalid body; 429/503 with
``Retry-After`` when throttled (not acted on). ``state``: ``accepted | processing | paid |
failed | returned``.

Status: ``GET {base}/v1/payouts/{key}`` (signed, empty body) answers the payout JSON, or 404.

Callbacks (rail -> hub): ``POST`` to the hub's URL, body
``{"event": "payout.status", "payout": <payout JSON>}``, headers ``X-Timestamp`` and
``X-Signature`` = hex HMAC-SHA256(callback_secret, ``timestamp "\\n" body``); refused if more than
5 minutes old. A callback may be lost or repeated: the hub treats them as hints and polls.

Statement: ``GET {base}/v1/settlements/{YYYY-MM-DD}.csv`` (404 while not available yet), format
in ``settlement``.
"""

from adapters.rails.merchantrade.adapter import MerchantradeRail
from adapters.rails.merchantrade.config import MerchantradeConfig

__all__ = ["MerchantradeConfig", "MerchantradeRail"]
