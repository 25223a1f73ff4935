"""PK-MOPHRD (Ministry of Overseas Pakistanis & HRD): JSON in its own envelope, camelCase, push.

Wire profile
    ``Content-Type: application/json``; ``X-JWS-Signature`` = detached JWS (ES256) over the
    exact body. One message per request::

        {"header": {"messageId": "<uuid>", "messageType": "claim.notify", "version": 1,
                    "senderId": "PK-MOPHRD", "recipientId": "MY-PERKESO",
                    "sentAt": "2026-11-21T13:15:30+05:00", "correlationId": "CLM-1"},
         "body": {"claimRef": "...", "worker": {"dateOfBirth": "14/03/1991", ...}, ...}}

    - every field name is the camelCase of the PX/1 name (``date_of_birth`` ->
      ``dateOfBirth``); a snake_case or misspelt name is refused, not guessed;
    - calendar dates are ``DD/MM/YYYY`` (zero-padded);
    - timestamps carry Pakistan's offset (``+05:00``; any explicit offset is accepted);
    - CNIC / NICOP numbers are written ``12345-1234567-1`` (13 plain digits accepted too).

    Receipts (the hub's answer, and PK-MOPHRD's answer to a pushed hub message) are
    ``{"receiptId", "messageId", "senderId", "status", "receivedAt", "bodySha256"}``.
    Hub messages are pushed to the endpoint in the same envelope (``senderId`` MY-PERKESO).
"""

from adapters.partners.pk_mophrd.adapter import PkMophrdAdapter
from adapters.partners.pk_mophrd.config import PkMophrdConfig

__all__ = ["PkMophrdAdapter", "PkMophrdConfig"]
