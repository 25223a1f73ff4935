"""ISO 20022 bank payout rail: pain.001 out, pain.002 back, camt.053/054 for reconciliation.

Transport (our assumption; banks differ, only this adapter changes): HTTPS to the bank's file
gateway, authenticated like the Merchantrade rail with ``X-Key-Id``, ``X-Timestamp`` and
``X-Signature`` = hex HMAC-SHA256(secret, ``timestamp "\\n" METHOD "\\n" path "\\n" body``)
(``adapters.rails._hmac``), chosen over mutual-token auth because it also binds the file's bytes.

- ``POST {base}/pain001`` (``application/xml``, ``Idempotency-Key: <MsgId>``): one pain.001.001.09
  per submit; the synchronous answer is a pain.002 acknowledgement (formats in ``pain``).
- ``GET {base}/pain002/{EndToEndId}``: the current pain.002 of one payout, 404 if unknown.
- ``GET {base}/camt053/{YYYY-MM-DD}``: the end-of-day camt.053 (reader in ``camt``); 404 while
  it is not available yet. ``GET {base}/camt054/{YYYY-MM-DD}``: the day's camt.054.
- Callbacks: the bank may push a single-transaction pain.002, signed with ``X-Timestamp`` and
  ``X-Signature`` = hex HMAC-SHA256(callback_secret, ``timestamp "\\n" body``).

XML is parsed with a hardened lxml parser (no network, no entities, no DTD, DOCTYPE refused).
"""

from adapters.rails.iso20022.adapter import Iso20022Rail
from adapters.rails.iso20022.config import Iso20022Config

__all__ = ["Iso20022Config", "Iso20022Rail"]
