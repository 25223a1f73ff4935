"""MM-SSB (Social Security Board, Myanmar): PX/1 envelopes in signed JSON Lines batches, pull.

Wire profile (partner -> hub)
    ``POST /v1/messages`` with ``Content-Type: application/x-ndjson`` (``application/jsonl`` is
    accepted too): one PX/1 envelope per line, UTF-8, lines separated by ``\\n`` (a final
    newline is optional; an empty line in the middle is refused as that line), at most
    ``max_lines`` lines (``MmSsbConfig``, 500 by default). ``X-JWS-Signature`` is the detached
    JWS over the *whole* batch. Field names are PX/1's. MM-SSB's own spellings, translated here:

    - ``national_id`` with scheme ``MM-NRC`` may be written in Burmese script
      (``၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆``) or ASCII (``12/OUKAMA(N)123456``, any romanisation that fits
      one township code of the state; one that fits several is refused as ambiguous);
    - Myanmar text must be Unicode: a Zawgyi-encoded field is refused, naming it;
    - timestamps carry Myanmar's offset (``2026-11-21T14:45:30+06:30``); canonical is UTC.

    The answer is ``200`` with JSON Lines, one result per batch line, in order::

        {"line": 1, "status": "accepted", "message_id": "...", "receipt_b64": "...",
         "receipt_signature": "<hub's detached JWS over the receipt bytes>"}
        {"line": 2, "status": "refused", "problem": {"code": "schema_violation", ...}}

    signed as a whole by the hub in ``X-JWS-Signature``. Each line is accepted or refused on
    its own: a bad line never loses a good one, and a line sent again gets ``duplicate``.

Wire profile (hub -> partner)
    Pull: MM-SSB has no inbound endpoint. Hub messages wait in ``GET /v1/inbox``; each body is
    one line of the same format (NRC in Burmese script when its township is known, times at
    +06:30) and MM-SSB acknowledges it with a ``receipt.ack`` line.
"""

from adapters.partners.mm_ssb.adapter import MmSsbAdapter
from adapters.partners.mm_ssb.config import MmSsbConfig

__all__ = ["MmSsbAdapter", "MmSsbConfig"]
