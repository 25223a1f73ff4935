"""camt.053 (end-of-day statement) and camt.054 (debit/credit notification) reader and writer.

Read: any version of ``urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN`` or ``camt.054.001.NN``
(tested on 02, 04 and 08). ``Document/BkToCstmrStmt/Stmt*`` (053) or
``Document/BkToCstmrDbtCdtNtfctn/Ntfctn*`` (054), each with ``Id``, ``Acct`` and ``Ntry*``:

- ``Ntry/Amt@Ccy`` (always positive), ``CdtDbtInd`` (CRDT/DBIT), ``RvslInd`` (optional,
  default false), ``Sts`` (text up to v6, ``Sts/Cd`` or ``Sts/Prtry`` from v7),
  ``BookgDt``/``ValDt`` (``Dt`` or ``DtTm``), ``AcctSvcrRef``, ``BkTxCd`` (Domn/Fmly or Prtry).
- ``NtryDtls/TxDtls*``: ``Refs/EndToEndId`` (``NOTPROVIDED`` means none), ``Refs/UETR``,
  ``Refs/AcctSvcrRef``, per-transaction amount (``Amt`` from v3, else ``AmtDtls/TxAmt/Amt``, else
  ``AmtDtls/InstdAmt/Amt``), ``CdtDbtInd``, ``RtrInf/Rsn/Cd``.

One ``StatementLine`` per ``TxDtls`` (an entry without details gives one line). An entry with a
single ``TxDtls`` keeps the entry's amount (the booked amount is authoritative; the detail's own
``Amt`` may be in another currency and goes to ``extra``). A batched entry (several ``TxDtls``)
gives a line per transaction with that transaction's amount; the amounts must add up to the
entry's, and an entry whose transactions carry no amounts gives one entry-level line listing
their end-to-end ids in ``extra`` so reconciliation reports it rather than guessing.

A missing ``BookgDt`` (camt.054 often has none) falls back to ``ValDt``, then the record's
``CreDtTm``; ``extra["booked_on_source"]`` says which. A ``DtTm`` keeps the bank's local date.

Write (simulator): ``render_camt053`` makes a camt.053.001.08 (or .02) statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from adapters.rails._money import statement_money
from adapters.rails.iso20022.xml import all_, child, document, localname, parse, text
from adapters.rails.iso20022.xml import sub as sub_element
from gateway.errors import InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import StatementLine

__all__ = ["CamtEntry", "parse_camt", "render_camt053"]

_NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_KINDS = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


class _Where:
    """Names the position in the document for error messages."""

    def __init__(self, record: str, entry: int) -> None:
        self.record, self.entry = record, entry

    def bad(self, field: str, why: str) -> InvalidMessageError:
        return InvalidMessageError(
            "schema_violation",
            f"statement {self.record}, entry {self.entry}, {field}: {why}",
            record=self.record,
            entry=self.entry,
            field=field,
        )


def _when(el: etree._Element | None, where: _Where, field: str) -> tuple[date, str] | None:
    if el is None:
        return None
    day = text(el, "Dt")
    if day is not None:
        try:
            return date.fromisoformat(day[:10]), day
        except ValueError:
            raise where.bad(f"{field}/Dt", f"{day!r} is not a date") from None
    moment = text(el, "DtTm")
    if moment is not None:
        try:
            # The bank's own (local) calendar day is the booking day, not the UTC one.
            return datetime.fromisoformat(moment).date(), moment
        except ValueError:
            raise where.bad(f"{field}/DtTm", f"{moment!r} is not a date-time") from None
    raise where.bad(field, "has neither Dt nor DtTm")


def _amount(el: etree._Element | None, where: _Where, field: str) -> Money | None:
    if el is None:
        return None
    ccy = el.get("Ccy")
    if not ccy:
        raise where.bad(f"{field}@Ccy", "currency attribute missing")
    try:
        return statement_money(el.text or "", ccy)
    except ValueError as exc:
        raise where.bad(field, str(exc)) from None


def _bool(value: str | None, where: _Where, field: str) -> bool:
    if value is None:
        return False
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise where.bad(field, f"{value!r} is not a boolean")


def _cdi(value: str | None, where: _Where, field: str) -> bool:
    if value not in ("CRDT", "DBIT"):
        raise where.bad(field, f"must be CRDT or DBIT, got {value!r}")
    return value == "CRDT"


def _tx_amount(tx: etree._Element, where: _Where) -> Money | None:
    for path in (("Amt",), ("AmtDtls", "TxAmt", "Amt"), ("AmtDtls", "InstdAmt", "Amt")):
        found = child(tx, *path)
        if found is not None:
            return _amount(found, where, "TxDtls/" + "/".join(path))
    return None


def _bank_tx_code(entry: etree._Element) -> str | None:
    domain = child(entry, "BkTxCd", "Domn")
    if domain is not None:
        parts = [text(domain, "Cd"), text(domain, "Fmly", "Cd"), text(domain, "Fmly", "SubFmlyCd")]
        return "/".join(p for p in parts if p) or None
    return text(entry, "BkTxCd", "Prtry", "Cd")


def parse_camt(data: bytes) -> list[StatementLine]:
    """Parse a camt.053 or camt.054 document into statement lines.

    Raises:
        InvalidMessageError: unknown_type if it is not camt.053/054; schema_violation naming
            the statement, entry and field otherwise.
    """
    namespace, message = document(parse(data, "camt"), "camt")
    kind = namespace.removeprefix(_NS_PREFIX)[:8]
    if not namespace.startswith(_NS_PREFIX) or kind not in _KINDS:
        raise InvalidMessageError("unknown_type", f"not a camt.053/054 document: {namespace!r}")
    wrapper, record_name = _KINDS[kind]
    if child(message, wrapper) is not None:  # tolerate a Document/Wrapper nesting mistake
        message = child(message, wrapper)
    if localname(message) != wrapper:
        raise InvalidMessageError("schema_violation", f"{kind}: expected {wrapper}")
    msg_id = text(message, "GrpHdr", "MsgId") or ""
    msg_created = text(message, "GrpHdr", "CreDtTm")
    lines: list[StatementLine] = []
    for record in all_(message, record_name):
        record_id = text(record, "Id")
        if record_id is None:
            raise InvalidMessageError("schema_violation", f"{kind}: {record_name}/Id missing")
        created = text(record, "CreDtTm") or msg_created
        account = text(record, "Acct", "Id", "IBAN") or text(record, "Acct", "Id", "Othr", "Id")
        for index, entry in enumerate(all_(record, "Ntry")):
            where = _Where(record_id, index + 1)
            lines.extend(
                _entry_lines(
                    entry,
                    where,
                    len(lines),
                    {
                        "message_id": msg_id,
                        "version": namespace.removeprefix(_NS_PREFIX),
                        "account": account or "",
                        "entry_index": str(index),
                    },
                    created,
                )
            )
    return lines


def _entry_lines(
    entry: etree._Element, where: _Where, before: int, base: dict[str, str], created: str | None
) -> list[StatementLine]:
    amount = _amount(child(entry, "Amt"), where, "Amt")
    if amount is None:
        raise where.bad("Amt", "missing")
    credit = _cdi(text(entry, "CdtDbtInd"), where, "CdtDbtInd")
    reversal = _bool(text(entry, "RvslInd"), where, "RvslInd")
    status = text(entry, "Sts", "Cd") or text(entry, "Sts", "Prtry") or text(entry, "Sts")
    if status is None:
        raise where.bad("Sts", "missing")
    booked = _when(child(entry, "BookgDt"), where, "BookgDt")
    valued = _when(child(entry, "ValDt"), where, "ValDt")
    extra = dict(base)
    if booked is not None:
        booked_on, extra["booked_on_source"], extra["booked_at"] = booked[0], "BookgDt", booked[1]
    elif valued is not None:
        booked_on, extra["booked_on_source"] = valued[0], "ValDt"
    elif created is not None:
        try:
            booked_on = datetime.fromisoformat(created).date()
        except ValueError:
            raise where.bad("CreDtTm", f"{created!r} is not a date-time") from None
        extra["booked_on_source"] = "CreDtTm"
    else:
        raise where.bad("BookgDt", "missing, and no ValDt or CreDtTm to fall back on")
    if code := _bank_tx_code(entry):
        extra["bank_tx_code"] = code
    entry_ref = text(entry, "AcctSvcrRef")
    txs = [tx for details in all_(entry, "NtryDtls") for tx in all_(details, "TxDtls")]

    def line(
        n: int, money: Money, is_credit: bool, tx: etree._Element | None, more: dict[str, str]
    ) -> StatementLine:
        e2e = text(tx, "Refs", "EndToEndId") if tx is not None else None
        ref = (text(tx, "Refs", "AcctSvcrRef") if tx is not None else None) or entry_ref
        info = {**extra, **more}
        if tx is not None and (uetr := text(tx, "Refs", "UETR")):
            info["uetr"] = uetr
        return StatementLine(
            statement_id=where.record,
            line_no=before + n + 1,
            amount=money,
            credit=is_credit,
            booked_on=booked_on,
            value_on=valued[0] if valued else None,
            end_to_end_id=None if e2e in (None, "NOTPROVIDED") else e2e,
            rail_reference=ref,
            status=status,
            reversal=reversal,
            return_reason=text(tx, "RtrInf", "Rsn", "Cd") if tx is not None else None,
            extra=info,
        )

    if len(txs) <= 1:
        tx = txs[0] if txs else None
        more: dict[str, str] = {"tx_index": "0"} if tx is not None else {}
        if tx is not None and (own := _tx_amount(tx, where)) is not None and own != amount:
            more["tx_amount"] = str(own)
        return [line(0, amount, credit, tx, more)]

    amounts = [_tx_amount(tx, where) for tx in txs]
    if all(a is None for a in amounts):
        ids = [text(tx, "Refs", "EndToEndId") or "" for tx in txs]
        return [
            line(
                0,
                amount,
                credit,
                None,
                {
                    "tx_count": str(len(txs)),
                    "end_to_end_ids": ",".join(ids),
                },
            )
        ]
    if any(a is None for a in amounts):
        raise where.bad("TxDtls", "some transactions of a batched entry carry no amount")
    signed = 0
    out = []
    for n, (tx, money) in enumerate(zip(txs, amounts, strict=True)):
        assert money is not None
        if money.currency != amount.currency:
            raise where.bad(f"TxDtls[{n + 1}]", "amount currency differs from the entry's")
        tx_credit = (
            _cdi(text(tx, "CdtDbtInd"), where, "TxDtls/CdtDbtInd")
            if child(tx, "CdtDbtInd") is not None
            else credit
        )
        signed += money.minor if tx_credit == credit else -money.minor
        out.append(line(n, money, tx_credit, tx, {"tx_index": str(n), "batch": "true"}))
    if signed != amount.minor:
        raise where.bad("TxDtls", f"transactions add up to {signed}, entry says {amount.minor}")
    return out


@dataclass(frozen=True, slots=True)
class CamtEntry:
    """One booked entry for ``render_camt053`` (the simulator's writer)."""

    amount: Money
    credit: bool
    booked_on: date
    account_servicer_ref: str
    end_to_end_ids: Sequence[tuple[str, Money]]  # one (id, amount) per TxDtls
    return_reason: str | None = None


def render_camt053(
    statement_id: str,
    account: str,
    created: datetime,
    entries: Sequence[CamtEntry],
    version: str = "08",
) -> bytes:
    """Render a camt.053.001.08 (or .02) statement of ``entries``."""
    ns = f"{_NS_PREFIX}camt.053.001.{version}"
    doc = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})

    def sub(parent: etree._Element, name: str, value: str | None = None,
            **attrs: str) -> etree._Element:
        return sub_element(parent, ns, name, value, **attrs)

    stmt_root = sub(doc, "BkToCstmrStmt")
    hdr = sub(stmt_root, "GrpHdr")
    sub(hdr, "MsgId", statement_id)
    sub(hdr, "CreDtTm", created.isoformat(timespec="seconds"))
    stmt = sub(stmt_root, "Stmt")
    sub(stmt, "Id", statement_id)
    sub(stmt, "CreDtTm", created.isoformat(timespec="seconds"))
    sub(sub(sub(sub(stmt, "Acct"), "Id"), "Othr"), "Id", account)
    for e in entries:
        ntry = sub(stmt, "Ntry")
        sub(ntry, "Amt", e.amount.amount_str(), Ccy=e.amount.currency)
        sub(ntry, "CdtDbtInd", "CRDT" if e.credit else "DBIT")
        sub(ntry, "RvslInd", "false")
        if version >= "07":
            sub(sub(ntry, "Sts"), "Cd", "BOOK")
        else:
            sub(ntry, "Sts", "BOOK")
        sub(sub(ntry, "BookgDt"), "Dt", e.booked_on.isoformat())
        sub(sub(ntry, "ValDt"), "Dt", e.booked_on.isoformat())
        sub(ntry, "AcctSvcrRef", e.account_servicer_ref)
        domain = sub(sub(ntry, "BkTxCd"), "Domn")
        sub(domain, "Cd", "PMNT")
        fmly = sub(domain, "Fmly")
        sub(fmly, "Cd", "RCDT" if e.credit else "ICDT")
        sub(fmly, "SubFmlyCd", "RRTN" if e.return_reason else "ESCT")
        details = sub(ntry, "NtryDtls")
        for e2e, money in e.end_to_end_ids:
            tx = sub(details, "TxDtls")
            sub(sub(tx, "Refs"), "EndToEndId", e2e)
            sub(sub(sub(tx, "AmtDtls"), "TxAmt"), "Amt", money.amount_str(), Ccy=money.currency)
            if e.return_reason:
                sub(sub(sub(tx, "RtrInf"), "Rsn"), "Cd", e.return_reason)
    # lxml is untyped
    return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True))
