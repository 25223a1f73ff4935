"""camt.053 (end-of-day statement) and camt.054 (debit/credit notification): streaming reader
with the statement's own proofs, and a streaming writer.

Read (``scan_camt``): any version of ``urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN`` or
``camt.054.001.NN`` (tested on 02, 04 and 08), with ``lxml.etree.iterparse``: each ``Ntry`` and
``Bal`` is read when its end tag arrives, then cleared with its preceding siblings, so memory
does not grow with the statement. ``Document/BkToCstmrStmt/Stmt*`` (053) or
``Document/BkToCstmrDbtCdtNtfctn/Ntfctn*`` (054), each with ``Id``, ``ElctrncSeqNb``,
``CreDtTm``, ``FrToDt``, ``Acct``, ``Bal*`` (053) and ``Ntry*``:

- ``Ntry/Amt@Ccy`` (always positive), ``CdtDbtInd`` (CRDT/DBIT), ``RvslInd`` (optional,
  default false), ``Sts`` (text up to v6, ``Sts/Cd`` or ``Sts/Prtry`` from v7),
  ``BookgDt``/``ValDt`` (``Dt`` or ``DtTm``), ``AcctSvcrRef``, ``BkTxCd`` (Domn/Fmly or Prtry).
- ``NtryDtls/Btch/NbOfTxs`` and ``TtlAmt`` (a batch's own count and total, optional).
- ``NtryDtls/TxDtls*``: ``Refs/EndToEndId`` (``NOTPROVIDED`` means none), ``Refs/UETR``,
  ``Refs/AcctSvcrRef``, per-transaction amount (``Amt`` from v3, else ``AmtDtls/TxAmt/Amt``, else
  ``AmtDtls/InstdAmt/Amt``), ``CdtDbtInd``, ``BkTxCd``, ``RtrInf/Rsn/Cd``.

Items, in document order: a ``StatementRecord`` per ``Stmt``/``Ntfctn`` (business date from
``FrToDt/FrDtTm``, else its ``CreDtTm``; ``ElctrncSeqNb`` as ``sequence``), then one
``StatementLine`` per ``TxDtls`` (an entry without details gives one line), a ``batch`` proof
after each batched entry, and at the end of a camt.053 ``Stmt`` one ``balance`` proof per
currency, then a ``structure`` proof that holds (the record was read to its end tag). An
entry that cannot be read (bad amount, date, indicator...) is a ``BadLine`` naming
the field; reading goes on with the next entry. A document that breaks off (a syntax error
mid-way) gives a failed ``structure`` proof and ends.

- An entry with a single ``TxDtls`` keeps the entry's amount (the booked amount is
  authoritative; the detail's own ``Amt`` may be in another currency and goes to ``extra``).
- A batched entry (several ``TxDtls``) gives a line per transaction with that transaction's
  amount and the entry's ``AcctSvcrRef`` as ``batch_ref``. Its ``batch`` proof: the signed
  transaction amounts add up to the entry, in its currency, and their count and total equal
  ``Btch/NbOfTxs`` and ``Btch/TtlAmt`` when given. An entry whose transactions carry no
  amounts gives one entry-level line listing their end-to-end ids in ``extra``.
- ``balance`` (camt.053, per currency): the opening booked balance (``OPBD``, else ``PRCD``)
  plus the booked (``BOOK``) credits minus the booked debits equals the closing booked balance
  (``CLBD``); the detail shows the four figures. A currency without both balances, or an entry
  whose amount could not be read, fails the proof.
- Kinds: ``RvslInd`` true -> ``reversal``; a charges sub-family (``CHRG``, ``FEES``, ``COMM``...)
  -> ``fee``; domain ``FORX`` -> ``fx``; a credit with ``RtrInf`` or a return sub-family
  (``RRTN``, ``ARET``) -> ``returned`` (``return_reason`` is ``RtrInf/Rsn/Cd``); a debit in the
  payments domain (or without a domain code) -> ``payout``; anything else -> ``other``.

A missing ``BookgDt`` (camt.054 often has none) falls back to ``ValDt``, then the record's
``CreDtTm``; ``extra["booked_on_source"]`` says which. A ``DtTm`` keeps the bank's local date.

Write (``write_camt``): a camt.053.001.08 (or .02) statement or a camt.054.001.08 notification,
element by element with ``lxml.etree.xmlfile``, so a million entries never sit in memory.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import BinaryIO

from lxml import etree

from adapters.rails._money import StatementMoney, statement_money
from adapters.rails._statements import KUALA_LUMPUR, plain_number, quoted
from adapters.rails.iso20022.xml import child, children, localname, stripped, text
from gateway.errors import InvalidMessageError
from gateway.money import MINOR_UNITS, Money
from gateway.ports.rail import (
    BadLine,
    LineKind,
    StatementItem,
    StatementLine,
    StatementProof,
    StatementRecord,
)

__all__ = [
    "CamtEntry",
    "CamtRecord",
    "CamtTx",
    "parse_camt",
    "scan_camt",
    "write_camt",
]

_NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_KINDS = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
# ISO 20022 external bank transaction (sub-)family codes that decide a line's kind.
_RETURN_SUBFAMILIES = frozenset({"RRTN", "ARET"})
_FEE_SUBFAMILIES = frozenset({"CHRG", "FEES", "COMM", "COME", "COMI", "COMT", "SUBS"})
_FX_DOMAIN = "FORX"
_OPENING = ("OPBD", "PRCD")  # opening booked; previously closed booked (the same figure)
_CLOSING = "CLBD"
_TEXT_LIMIT = 500
_NTRY_DTLS, _TX_DTLS = "{*}NtryDtls", "{*}TxDtls"
_NONE: Mapping[str, etree._Element] = {}  # the children of an absent element
# iterparse options: the same hardening as ``xml.parse`` (no network, entities or DTD).
_HARDENED = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


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
    kids = children(el)
    day = stripped(kids.get("Dt"))
    if day is not None:
        try:
            return date.fromisoformat(day[:10]), day
        except ValueError:
            raise where.bad(f"{field}/Dt", f"{day!r} is not a date") from None
    moment = stripped(kids.get("DtTm"))
    if moment is not None:
        try:
            # The bank's own (local) calendar day is the booking day, not the UTC one.
            return datetime.fromisoformat(moment).date(), moment
        except ValueError:
            raise where.bad(f"{field}/DtTm", f"{moment!r} is not a date-time") from None
    raise where.bad(field, "has neither Dt nor DtTm")


# An entry's amount is usually written again in its TxDtls, and benefit payouts repeat amounts:
# Money is immutable, so equal text gives the same object. Errors are not cached (re-raised).
_statement_money = functools.lru_cache(maxsize=1024)(statement_money)


def _amount(el: etree._Element | None, where: _Where, field: str) -> Money | None:
    if el is None:
        return None
    ccy = el.get("Ccy")
    if not ccy:
        raise where.bad(f"{field}@Ccy", "currency attribute missing")
    try:
        return _statement_money(el.text or "", ccy)
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


def _tx_amount(tx: Mapping[str, etree._Element], where: _Where) -> Money | None:
    """The amount of a ``TxDtls`` (given as its children): ``Amt``, else ``AmtDtls/TxAmt/Amt``,
    else ``AmtDtls/InstdAmt/Amt``."""
    found = tx.get("Amt")
    if found is not None:
        return _amount(found, where, "TxDtls/Amt")
    details = children(tx.get("AmtDtls"))
    for part in ("TxAmt", "InstdAmt"):
        found = children(details.get(part)).get("Amt")
        if found is not None:
            return _amount(found, where, f"TxDtls/AmtDtls/{part}/Amt")
    return None


_Code = tuple[str | None, str | None, str | None]  # domain, family, sub-family
_Pair = tuple[StatementItem, InvalidMessageError | None]  # an item and what parse_camt raises


def _bank_tx_code(kids: Mapping[str, etree._Element]) -> tuple[_Code, str | None]:
    """Return the structured code (domain, family, sub-family) and its one-string form, of the
    element whose children are ``kids``."""
    code_el = children(kids.get("BkTxCd"))
    domain = code_el.get("Domn")
    if domain is not None:
        domain_kids = children(domain)
        family = children(domain_kids.get("Fmly"))
        code = (stripped(domain_kids.get("Cd")), stripped(family.get("Cd")),
                stripped(family.get("SubFmlyCd")))
        if code[0] and code[1] and code[2]:
            return code, f"{code[0]}/{code[1]}/{code[2]}"
        return code, "/".join(p for p in code if p) or None
    return (None, None, None), stripped(children(code_el.get("Prtry")).get("Cd"))


def _kind(credit: bool, reversal: bool, code: _Code, return_info: bool) -> LineKind:
    domain, _, subfamily = code
    if reversal:
        return LineKind.reversal
    if subfamily in _FEE_SUBFAMILIES:
        return LineKind.fee
    if domain == _FX_DOMAIN:
        return LineKind.fx
    if credit and (return_info or subfamily in _RETURN_SUBFAMILIES):
        return LineKind.returned
    if not credit and domain in (None, "PMNT"):
        return LineKind.payout
    return LineKind.other


def _money(minor: int, currency: str) -> Money:
    return (Money if currency in MINOR_UNITS else StatementMoney)(minor, currency)


def _signed(minor: int, currency: str) -> str:
    return f"{'-' if minor < 0 else ''}{_money(abs(minor), currency).amount_str()}"


def _snippet(el: etree._Element) -> str:
    raw: bytes = etree.tostring(el, encoding="UTF-8")
    return raw.decode("utf-8", "replace")[:_TEXT_LIMIT]


@dataclass(slots=True)
class _Balances:
    """One camt.053 statement's balances and its running booked totals, per currency."""

    opening: dict[str, tuple[int, str]] = field(default_factory=dict)
    closing: dict[str, int] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)
    debits: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def read(self, bal: etree._Element) -> None:
        code = text(bal, "Tp", "CdOrPrtry", "Cd")
        if code not in (*_OPENING, _CLOSING):
            return  # interim and available balances prove nothing about the day's entries
        where = _Where("", 0)
        try:
            amount = _amount(child(bal, "Amt"), where, "Bal/Amt")
            if amount is None:
                raise where.bad("Bal/Amt", "missing")
            credit = _cdi(text(bal, "CdtDbtInd"), where, "Bal/CdtDbtInd")
        except InvalidMessageError as exc:
            self.problems.append(f"balance {code} unreadable ({exc.extra.get('field')})")
            return
        signed = amount.minor if credit else -amount.minor
        if code == _CLOSING:
            self.closing[amount.currency] = signed
        elif amount.currency not in self.opening or code == "OPBD":
            self.opening[amount.currency] = (signed, code)

    def book(self, status: str | None, amount: Money, credit: bool) -> None:
        """Add a read entry's amount to the booked totals."""
        if status != "BOOK":
            return  # pending and information-only entries are not in the booked balance
        totals = self.credits if credit else self.debits
        totals[amount.currency] = totals.get(amount.currency, 0) + amount.minor

    def book_unread(self, entry: etree._Element) -> None:
        """Add the amount of an entry that is a BadLine, if its money can be read on its own."""
        where = _Where("", 0)
        try:
            amount = _amount(child(entry, "Amt"), where, "Amt")
            credit = _cdi(text(entry, "CdtDbtInd"), where, "CdtDbtInd")
        except InvalidMessageError:
            amount = None
        status = text(entry, "Sts", "Cd") or text(entry, "Sts", "Prtry") or text(entry, "Sts")
        if amount is None:
            if status == "BOOK" or status is None:
                self.problems.append("an entry's amount or direction could not be read")
            return
        self.book(status, amount, credit)

    def proofs(self, statement_id: str) -> Iterator[StatementProof]:
        currencies = sorted({*self.opening, *self.closing, *self.credits, *self.debits})
        if not currencies:
            yield StatementProof(
                statement_id, "balance", False, "balances missing: no OPBD and no CLBD"
            )
            return
        for ccy in currencies:
            credits, debits = self.credits.get(ccy, 0), self.debits.get(ccy, 0)
            missing = [c for c, have in (("OPBD", ccy in self.opening),
                                         ("CLBD", ccy in self.closing)) if not have]
            if missing:
                yield StatementProof(
                    statement_id, "balance", False,
                    f"{ccy}: balances missing ({' and '.join(missing)}); booked credits "
                    f"{_signed(credits, ccy)}, debits {_signed(debits, ccy)}",
                )
                continue
            opening, code = self.opening[ccy]
            computed = opening + credits - debits
            closing = self.closing[ccy]
            figures = (
                f"{ccy}: opening {code} {_signed(opening, ccy)} + credits {_signed(credits, ccy)}"
                f" - debits {_signed(debits, ccy)} = {_signed(computed, ccy)}; closing CLBD "
                f"{_signed(closing, ccy)}"
            )
            if self.problems:
                yield StatementProof(
                    statement_id, "balance", False, f"{figures}; cannot be proved: "
                    + "; ".join(sorted(set(self.problems)))
                )
            elif computed != closing:
                yield StatementProof(
                    statement_id, "balance", False,
                    f"{figures}: does not add up (off by {_signed(closing - computed, ccy)})",
                )
            else:
                yield StatementProof(statement_id, "balance", True, f"{figures}: holds")


def _status(sts: etree._Element | None) -> str | None:
    """An entry's status: ``Sts/Cd`` or ``Sts/Prtry`` (from v7), else the text of ``Sts``."""
    if sts is None:
        return None
    kids = children(sts)
    return stripped(kids.get("Cd")) or stripped(kids.get("Prtry")) or stripped(sts)


def _entry_items(
    entry: etree._Element,
    where: _Where,
    first_line: int,
    base: dict[str, str],
    created: str | None,
) -> tuple[
    list[StatementLine],
    tuple[StatementProof, InvalidMessageError | None] | None,
    tuple[str, Money, bool],
]:
    """Read one ``Ntry`` into its lines, its batch proof (if batched) and its booking (status,
    amount, direction) for the balance.

    Raises:
        InvalidMessageError: schema_violation naming the field (the entry is a ``BadLine``).
    """
    kids = children(entry)
    amount = _amount(kids.get("Amt"), where, "Amt")
    if amount is None:
        raise where.bad("Amt", "missing")
    credit = _cdi(stripped(kids.get("CdtDbtInd")), where, "CdtDbtInd")
    reversal = _bool(stripped(kids.get("RvslInd")), where, "RvslInd")
    status = _status(kids.get("Sts"))
    if status is None:
        raise where.bad("Sts", "missing")
    booked = _when(kids.get("BookgDt"), where, "BookgDt")
    valued = _when(kids.get("ValDt"), where, "ValDt")
    extra = base  # the caller's, built for this entry alone
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
    entry_code, code_text = _bank_tx_code(kids)
    if code_text:
        extra["bank_tx_code"] = code_text
    entry_ref = stripped(kids.get("AcctSvcrRef"))
    details = entry.iterchildren(_NTRY_DTLS) if "NtryDtls" in kids else ()
    txs: list[etree._Element] = []
    batch: etree._Element | None = None
    for d in details:
        txs.extend(d.iterchildren(_TX_DTLS))
        if batch is None:
            batch = children(d).get("Btch")
    batched = len(txs) > 1 or batch is not None
    value_on = valued[0] if valued else None

    def line(
        n: int, money: Money, is_credit: bool, tx: Mapping[str, etree._Element],
        more: dict[str, str]
    ) -> StatementLine:
        refs = children(tx.get("Refs"))
        e2e = stripped(refs.get("EndToEndId"))
        ref = stripped(refs.get("AcctSvcrRef")) or entry_ref
        info = {**extra, **more}
        uetr = stripped(refs.get("UETR"))
        if uetr:
            info["uetr"] = uetr
        return_info = tx.get("RtrInf")
        reason = (None if return_info is None
                  else stripped(children(children(return_info).get("Rsn")).get("Cd")))
        code = entry_code
        if "BkTxCd" in tx:
            own, own_text = _bank_tx_code(tx)
            if own != (None, None, None):
                code = own
            if own_text:
                info["tx_bank_tx_code"] = own_text
        return StatementLine(
            statement_id=where.record,
            line_no=first_line + n,
            amount=money,
            credit=is_credit,
            booked_on=booked_on,
            value_on=value_on,
            end_to_end_id=None if e2e in (None, "NOTPROVIDED") else e2e,
            rail_reference=ref,
            status=status,
            reversal=reversal,
            return_reason=reason,
            extra=info,
            kind=_kind(is_credit, reversal, code, return_info is not None),
            uetr=uetr,
            batch_ref=entry_ref if batched else None,
        )

    if not batched:
        tx = children(txs[0]) if txs else _NONE
        more: dict[str, str] = {"tx_index": "0"} if txs else {}
        if txs and (own := _tx_amount(tx, where)) is not None and own != amount:
            more["tx_amount"] = str(own)
        return [line(0, amount, credit, tx, more)], None, (status, amount, credit)

    tx_kids = [children(tx) for tx in txs]
    amounts = [_tx_amount(tx, where) for tx in tx_kids]
    problems: list[str] = []
    batch_kids = children(batch)
    declared = stripped(batch_kids.get("NbOfTxs"))
    if declared is not None and declared != str(len(txs)):
        problems.append(f"NbOfTxs says {declared}, the entry has {len(txs)} transactions")
    if txs and all(a is None for a in amounts):
        ids = [stripped(children(tx.get("Refs")).get("EndToEndId")) or "" for tx in tx_kids]
        lines = [line(0, amount, credit, _NONE, {"tx_count": str(len(txs)),
                                                  "end_to_end_ids": ",".join(ids)})]
        checked = f"{len(txs)} transactions without amounts, booked as one line"
    else:
        if any(a is None for a in amounts):
            raise where.bad("TxDtls", "some transactions of a batched entry carry no amount")
        signed = 0
        lines = []
        for n, (tx, money) in enumerate(zip(tx_kids, amounts, strict=True)):
            assert money is not None
            if money.currency != amount.currency:
                problems.append(f"transaction {n + 1} is in {money.currency}, the entry in "
                                f"{amount.currency}")
            tx_credit = (
                _cdi(stripped(tx["CdtDbtInd"]), where, "TxDtls/CdtDbtInd")
                if "CdtDbtInd" in tx
                else credit
            )
            signed += money.minor if tx_credit == credit else -money.minor
            lines.append(line(n, money, tx_credit, tx, {"tx_index": str(n), "batch": "true"}))
        if signed != amount.minor:
            problems.append(f"transactions add up to {_signed(signed, amount.currency)}, "
                            f"the entry says {amount.amount_str()}")
        checked = (f"{len(txs)} transactions add up to {_signed(signed, amount.currency)} "
                   f"{amount.currency}")
    total = _amount(batch_kids.get("TtlAmt"), where, "Btch/TtlAmt")
    if total is not None and total != amount:
        problems.append(f"TtlAmt says {total}, the entry {amount}")
    label = f"entry {where.entry} ({entry_ref or 'no AcctSvcrRef'})"
    if problems:
        detail = f"{label}: " + "; ".join(problems)
        return lines, (StatementProof(where.record, "batch", False, detail),
                       where.bad("TxDtls", detail)), (status, amount, credit)
    return lines, (StatementProof(where.record, "batch", True, f"{label}: {checked}"),
                   None), (status, amount, credit)


@dataclass(slots=True)
class _Record:
    """The ``Stmt``/``Ntfctn`` being read."""

    element: etree._Element
    index: int
    header: StatementRecord | None = None
    created: str | None = None  # CreDtTm as written (the fallback booking day of an entry)
    entries: int = 0
    balances: _Balances = field(default_factory=_Balances)


def _parse_moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _business_day(begins: datetime | None) -> date | None:
    """The business day a statement's period begins on, in Asia/Kuala_Lumpur (the gateway's
    business calendar): a bank may write FrDtTm in UTC (1 December begins 30 November
    16:00Z). Without FrToDt the statement does not say (``None``): its creation time may be
    the next morning, and an intraday camt.054 often has none."""
    if begins is None:
        return None
    return (begins.astimezone(KUALA_LUMPUR) if begins.tzinfo is not None else begins).date()


class _Scanner:
    """The state of one streaming read (a generator of items paired with their error)."""

    def __init__(self) -> None:
        self.kind = ""
        self.version = ""
        self.wrapper = ""
        self.record_name = ""
        self.msg_id = ""
        self.msg_created: str | None = None
        self.records = 0
        self.line_no = 0
        self.record: _Record | None = None

    def open(self, root: etree._Element) -> None:
        """Check the root element before anything is yielded.

        Raises:
            InvalidMessageError: unknown_type, or schema_violation (DOCTYPE, not a Document).
        """
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            raise InvalidMessageError("schema_violation", "camt: DOCTYPE is not allowed")
        namespace = etree.QName(root).namespace or ""
        if localname(root) != "Document":
            raise InvalidMessageError("schema_violation", "camt: root must be Document")
        kind = namespace.removeprefix(_NS_PREFIX)[:8]
        if not namespace.startswith(_NS_PREFIX) or kind not in _KINDS:
            raise InvalidMessageError(
                "unknown_type", f"not a camt.053/054 document: {namespace!r}"
            )
        self.kind, self.version = kind, namespace.removeprefix(_NS_PREFIX)
        self.wrapper, self.record_name = _KINDS[kind]

    def header(self) -> Iterator[tuple[StatementItem, InvalidMessageError | None]]:
        """Yield the current record's ``StatementRecord`` once, when its header is complete."""
        record = self.record
        if record is None or record.header is not None:
            return
        el = record.element
        record_id = text(el, "Id")
        if record_id is None:
            raise _Broken(f"{self.kind}: {self.record_name} {record.index} has no Id")
        created = text(el, "CreDtTm") or self.msg_created
        record.created = created
        created_at = _parse_moment(created)
        begins = _parse_moment(text(el, "FrToDt", "FrDtTm"))
        sequence = text(el, "ElctrncSeqNb")
        account = text(el, "Acct", "Id", "IBAN") or text(el, "Acct", "Id", "Othr", "Id") or ""
        record.header = StatementRecord(
            statement_id=record_id,
            kind=self.kind,
            account=account,
            business_date=_business_day(begins),
            sequence=plain_number(sequence) if sequence is not None else None,
            created_at=created_at,
        )
        yield record.header, None
        if sequence is not None and record.header.sequence is None:
            # Stated but unreadable: continuity with the previous statement is unproved.
            yield StatementProof(record_id, "sequence", False,
                                 f"ElctrncSeqNb {quoted(sequence)} is not a number (1 to 18 "
                                 "digits): continuity with the previous statement cannot be "
                                 "checked"), None

    def entry(self, el: etree._Element) -> list[_Pair]:
        """Read one ``Ntry``: its lines and batch proof, or a ``BadLine``."""
        record = self.record
        assert record is not None and record.header is not None
        record.entries += 1
        statement_id = record.header.statement_id
        where = _Where(statement_id, record.entries)
        base = {
            "message_id": self.msg_id,
            "version": self.version,
            "account": record.header.account,
            "entry_index": str(record.entries - 1),
        }
        try:
            lines, proof, booking = _entry_items(el, where, self.line_no + 1, base,
                                                 record.created)
        except InvalidMessageError as exc:
            if self.kind == "camt.053":
                record.balances.book_unread(el)
            self.line_no += 1
            return [(BadLine(statement_id, self.line_no, exc.detail, _snippet(el)), exc)]
        if self.kind == "camt.053":
            record.balances.book(*booking)
        self.line_no += len(lines)
        pairs: list[_Pair] = [(line, None) for line in lines]
        if proof is not None:
            pairs.append(proof)
        return pairs

    def close_record(self) -> Iterator[tuple[StatementItem, InvalidMessageError | None]]:
        record = self.record
        assert record is not None and record.header is not None
        statement_id = record.header.statement_id
        if self.kind == "camt.053":
            for proof in record.balances.proofs(statement_id):
                yield proof, None
        yield StatementProof(statement_id, "structure", True,
                             f"{self.record_name} complete: {record.entries} entries"), None
        self.record = None


class _Broken(Exception):
    """The document cannot be read further (a failed ``structure`` proof)."""


# The only elements whose events the reader needs: libxml2 filters the rest in C (a statement
# has ~50 elements per entry), while the tree is still built, and cleared entry by entry.
_EVENT_TAGS = ("{*}Document", "{*}GrpHdr", "{*}Stmt", "{*}Ntfctn", "{*}Bal", "{*}Ntry")


def _drop(el: etree._Element) -> None:
    """Free an element that has been read, and every sibling before it."""
    el.clear(keep_tail=True)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _items(source: BinaryIO) -> Iterator[_Pair]:
    """Yield each item with the error ``parse_camt`` raises for it (None: no error)."""
    scan = _Scanner()
    started = False
    try:
        events = etree.iterparse(source, events=("start", "end"), tag=_EVENT_TAGS, **_HARDENED)
        for event, el in events:
            if not started:
                scan.open(el.getroottree().getroot())  # raises unless a camt Document
                started = True
            name = localname(el)
            record = scan.record
            if event == "start":
                if name == scan.record_name:
                    parent = el.getparent()
                    if parent is not None and localname(parent) == scan.wrapper:
                        scan.records += 1
                        scan.record = _Record(el, scan.records)
                        continue
                if (
                    record is not None
                    and record.header is None
                    and name in ("Bal", "Ntry")
                    and el.getparent() is record.element
                ):
                    yield from scan.header()  # every header field before them is complete
                continue
            if name == "GrpHdr":
                scan.msg_id = text(el, "MsgId") or ""
                scan.msg_created = text(el, "CreDtTm")
                continue
            if record is None:
                continue
            if name == "Ntry" and el.getparent() is record.element:
                yield from scan.entry(el)
                _drop(el)
            elif name == "Bal" and el.getparent() is record.element:
                record.balances.read(el)
                _drop(el)
            elif el is record.element:
                yield from scan.header()
                yield from scan.close_record()
                _drop(el)
        if not started:
            raise InvalidMessageError("schema_violation", "camt: root must be Document")
        if scan.records == 0:
            raise _Broken(f"{scan.kind}: no {scan.record_name} in {scan.wrapper}")
    except etree.XMLSyntaxError as exc:
        if not started:
            raise InvalidMessageError(
                "schema_violation", f"camt: not well-formed XML: {exc}"
            ) from exc
        detail = f"document breaks off: {exc}"
        yield _structure(scan, detail), InvalidMessageError("schema_violation", detail)
    except _Broken as exc:
        yield _structure(scan, str(exc)), InvalidMessageError("schema_violation", str(exc))


def _structure(scan: _Scanner, detail: str) -> StatementProof:
    record = scan.record
    statement_id = record.header.statement_id if record and record.header else scan.msg_id
    return StatementProof(statement_id, "structure", False, detail)


def scan_camt(source: BinaryIO) -> Iterator[StatementItem]:
    """Read a camt.053 or camt.054 as a stream of records, lines, bad lines and proofs.

    Raises:
        InvalidMessageError: unknown_type if it is not camt.053/054; schema_violation if it is
            not XML at all or has a DOCTYPE (before anything is yielded).
    """
    for item, _ in _items(source):
        yield item


def parse_camt(data: bytes) -> list[StatementLine]:
    """Parse a camt.053 or camt.054 document into statement lines (all or nothing).

    Built on ``scan_camt``: the first bad entry, failed batch proof or broken structure raises.
    Balance proofs are reconciliation's business and do not stop the parse.

    Raises:
        InvalidMessageError: unknown_type if it is not camt.053/054; schema_violation naming
            the statement, entry and field otherwise.
    """
    lines: list[StatementLine] = []
    for item, error in _items(io.BytesIO(data)):
        if error is not None:
            raise error
        if isinstance(item, StatementLine):
            lines.append(item)
    return lines


# ---- writer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CamtTx:
    """One ``TxDtls`` of an entry."""

    end_to_end_id: str
    amount: Money
    uetr: str | None = None
    return_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CamtEntry:
    """One booked entry for ``write_camt``."""

    amount: Money
    credit: bool
    booked_on: date
    account_servicer_ref: str
    transactions: Sequence[CamtTx]
    bank_tx_code: tuple[str, str, str] = ("PMNT", "ICDT", "ESCT")
    reversal: bool = False
    batch: bool = False  # write NtryDtls/Btch/NbOfTxs (one booking of many payouts)


@dataclass(frozen=True, slots=True)
class CamtRecord:
    """The ``Stmt``/``Ntfctn`` header for ``write_camt``; balances are signed minor units."""

    statement_id: str
    account: str
    created: datetime
    business_date: date
    sequence: int | None = None
    opening: Mapping[str, int] = field(default_factory=dict)
    closing: Mapping[str, int] = field(default_factory=dict)


def _el(parent: etree._Element, name: str, value: str | None = None,
        **attrs: str) -> etree._Element:
    # Unqualified: written inside the Document's default namespace, they inherit it.
    el = etree.SubElement(parent, name, attrs)
    if value is not None:
        el.text = value
    return el


def _balance(code: str, minor: int, currency: str, day: date) -> etree._Element:
    bal = etree.Element("Bal")
    _el(_el(_el(bal, "Tp"), "CdOrPrtry"), "Cd", code)
    _el(bal, "Amt", _money(abs(minor), currency).amount_str(), Ccy=currency)
    _el(bal, "CdtDbtInd", "DBIT" if minor < 0 else "CRDT")
    _el(_el(bal, "Dt"), "Dt", day.isoformat())
    return bal


def _entry_element(e: CamtEntry, version: str) -> etree._Element:
    ntry = etree.Element("Ntry")
    _el(ntry, "Amt", e.amount.amount_str(), Ccy=e.amount.currency)
    _el(ntry, "CdtDbtInd", "CRDT" if e.credit else "DBIT")
    _el(ntry, "RvslInd", "true" if e.reversal else "false")
    if version >= "07":
        _el(_el(ntry, "Sts"), "Cd", "BOOK")
    else:
        _el(ntry, "Sts", "BOOK")
    _el(_el(ntry, "BookgDt"), "Dt", e.booked_on.isoformat())
    _el(_el(ntry, "ValDt"), "Dt", e.booked_on.isoformat())
    _el(ntry, "AcctSvcrRef", e.account_servicer_ref)
    domain = _el(_el(ntry, "BkTxCd"), "Domn")
    _el(domain, "Cd", e.bank_tx_code[0])
    fmly = _el(domain, "Fmly")
    _el(fmly, "Cd", e.bank_tx_code[1])
    _el(fmly, "SubFmlyCd", e.bank_tx_code[2])
    if not e.transactions:
        return ntry
    details = _el(ntry, "NtryDtls")
    if e.batch:
        _el(_el(details, "Btch"), "NbOfTxs", str(len(e.transactions)))
    for t in e.transactions:
        tx = _el(details, "TxDtls")
        refs = _el(tx, "Refs")
        _el(refs, "EndToEndId", t.end_to_end_id)
        if t.uetr and version >= "07":
            _el(refs, "UETR", t.uetr)
        _el(_el(_el(tx, "AmtDtls"), "TxAmt"), "Amt", t.amount.amount_str(), Ccy=t.amount.currency)
        if t.return_reason:
            _el(_el(_el(tx, "RtrInf"), "Rsn"), "Cd", t.return_reason)
    return ntry


def write_camt(
    out: BinaryIO,
    record: CamtRecord,
    entries: Iterable[CamtEntry],
    *,
    kind: str = "camt.053",
    version: str = "08",
) -> None:
    """Write a one-record camt.053 (with ``OPBD``/``CLBD`` per currency) or camt.054, streaming.

    Balances are written as given: a caller that wants a statement that adds up passes the
    closing balances its entries lead to (the simulators and ``statements`` do).
    """
    wrapper, record_name = _KINDS[kind]
    ns = f"{_NS_PREFIX}{kind}.001.{version}"
    created = record.created.isoformat(timespec="seconds")
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{ns}}}Document", nsmap={None: ns}), xf.element(f"{{{ns}}}{wrapper}"):
            hdr = etree.Element("GrpHdr")
            _el(hdr, "MsgId", record.statement_id)
            _el(hdr, "CreDtTm", created)
            xf.write(hdr)
            with xf.element(f"{{{ns}}}{record_name}"):
                head = etree.Element("Head")
                _el(head, "Id", record.statement_id)
                if record.sequence is not None:
                    _el(head, "ElctrncSeqNb", str(record.sequence))
                _el(head, "CreDtTm", created)
                span = _el(head, "FrToDt")
                _el(span, "FrDtTm", f"{record.business_date.isoformat()}T00:00:00+08:00")
                _el(span, "ToDtTm", f"{record.business_date.isoformat()}T23:59:59+08:00")
                _el(_el(_el(_el(head, "Acct"), "Id"), "Othr"), "Id", record.account)
                for el in head:
                    xf.write(el)
                if kind == "camt.053":
                    for ccy in sorted({*record.opening, *record.closing}):
                        if ccy in record.opening:
                            xf.write(_balance("OPBD", record.opening[ccy], ccy,
                                              record.business_date))
                        if ccy in record.closing:
                            xf.write(_balance("CLBD", record.closing[ccy], ccy,
                                              record.business_date))
                for entry in entries:
                    xf.write(_entry_element(entry, version))
