"""NP-FEB (Foreign Employment Board, Nepal): XML documents of its own schema, push, ES256.

Wire profile
    ``Content-Type: application/xml``; ``X-JWS-Signature`` = detached JWS (ES256) over the
    exact document bytes. One message per document, UTF-8, no DTD (refused)::

        <?xml version='1.0' encoding='UTF-8'?>
        <febMessage xmlns="urn:np-feb:px:1" version="1">
          <messageId>0193a3c4-...</messageId>
          <messageType>claim.notify</messageType>
          <sender>NP-FEB</sender>
          <recipient>MY-PERKESO</recipient>
          <sentAt>2026-11-21T14:00:30+05:45</sentAt>
          <correlationId>FEB-2081-0042</correlationId>
          <payload>
            <claimRef>FEB-2081-0042</claimRef>
            <worker><name>राम बहादुर थापा</name><dateOfBirth>2047-01-15</dateOfBirth>
              <nationalId><scheme>NP-CTZ</scheme><district>Kathmandu</district>
                <number>27/01/71/12345</number></nationalId>...</worker>
            <documents list="true"><item>...</item></documents>
          </payload>
        </febMessage>

    - element names are the camelCase of PX/1's field names; a list is an element with
      ``list="true"`` whose children are ``<item>``; JSON null is ``nil="true"``;
    - calendar dates are **Bikram Sambat** ``YYYY-MM-DD`` (BS 1975..2095), ASCII or Devanagari
      digits, converted exactly both ways (written back in ASCII digits); timestamps are
      Gregorian RFC 3339 at Nepal's ``+05:45`` (any offset accepted);
    - a citizenship certificate (``NP-CTZ``) is ``<district>`` + ``<number>``: district names in
      any common romanisation or case, numbers with ``-`` or ``/`` and ASCII or Devanagari
      digits. Other schemes are ``<scheme>`` + ``<value>``;
    - text (names, notes) is carried exactly, Devanagari included.

    Receipts are ``<febReceipt>`` documents with ``receiptId``, ``messageId``, ``sender``,
    ``status``, ``receivedAt``, ``bodySha256``. Hub messages are pushed as ``febMessage``.
"""

from adapters.partners.np_feb.adapter import NpFebAdapter
from adapters.partners.np_feb.config import NpFebConfig

__all__ = ["NpFebAdapter", "NpFebConfig"]
