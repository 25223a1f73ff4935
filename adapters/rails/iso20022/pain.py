"""pain.001.001.09 (credit transfer initiation) and pain.002.001.10 (status report).

pain.001 as the adapter writes it (one file per submit, one ``PmtInf``)::

    Document/CstmrCdtTrfInitn
      GrpHdr: MsgId, CreDtTm, NbOfTxs, CtrlSum, InitgPty/Nm
      PmtInf: PmtInfId (= MsgId), PmtMtd TRF, NbOfTxs, CtrlSum, ReqdExctnDt/Dt,
              Dbtr/Nm, DbtrAcct/Id/Othr/Id, DbtrAgt/FinInstnId/BICFI
        CdtTrfTxInf*: PmtId/EndToEndId (= idempotency key), Amt/InstdAmt@Ccy,
                      CdtrAgt/FinInstnId/Othr/Id (= provider), Cdtr/Nm,
                      CdtrAcct/Id/Othr/Id (= account), RmtInf/Ustrd (= reference)

``MsgId`` = ``"PX"`` + the first 33 hex digits of SHA-256 over the sorted idempotency keys
joined by newlines: resending the same batch (after a crash or an unknown outcome) yields the
same MsgId, which the bank deduplicates. ISO limits EndToEndId and MsgId to 35 characters.

pain.002 (the synchronous acknowledgement, the status query answer and the callback body)::

    Document/CstmrPmtStsRpt
      GrpHdr: MsgId, CreDtTm
      OrgnlGrpInfAndSts: OrgnlMsgId, OrgnlMsgNmId (pain.001.001.09), GrpSts?
      OrgnlPmtInfAndSts: OrgnlPmtInfId,
        TxInfAndSts*: OrgnlEndToEndId, TxSts, StsRsnInf/Rsn/Cd?, AcctSvcrRef?

``TxSts``: ACTC/ACCP/RCVD -> accepted, ACSP/PDNG/ACWC -> processing, ACSC/ACCC -> paid,
RJCT -> failed (reason from ``StsRsnInf/Rsn/Cd``); returns are not a pain.002 status: a returned
payout shows as ACSC with reason ``RTRN`` (mapped to returned) and in camt.053 as a credit with
``RtrInf``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from lxml import etree

from adapters.rails.iso20022.xml import all_, child, document, localname, parse, sub, text
from gateway.errors import InvalidMessageError
from gateway.money import Money
from gateway.ports.rail import PayoutInstruction, PayoutState, PayoutStatus

__all__ = [
    "PAIN001_NS",
    "PAIN002_NS",
    "Debtor",
    "Pain001Tx",
    "StatusEntry",
    "build_pain001",
    "build_pain002",
    "message_id",
    "parse_pain001",
    "parse_pain002",
]

PAIN001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002_NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
MAX_ID = 35

TX_STATES: dict[str, PayoutState] = {
    "RCVD": PayoutState.accepted,
    "ACTC": PayoutState.accepted,
    "ACCP": PayoutState.accepted,
    "ACSP": PayoutState.processing,
    "ACWC": PayoutState.processing,
    "PDNG": PayoutState.processing,
    "ACSC": PayoutState.paid,
    "ACCC": PayoutState.paid,
    "RJCT": PayoutState.failed,
    "CANC": PayoutState.cancelled,
}
RETURNED_REASON = "RTRN"


@dataclass(frozen=True, slots=True)
class Debtor:
    """Our side of the transfer: the funding account."""

    name: str
    account: str
    bic: str


def message_id(keys: Sequence[str]) -> str:
    """Return the batch MsgId derived from its idempotency keys (order-independent)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return "PX" + digest[:33]


def check_payout(p: PayoutInstruction) -> str | None:
    """Return why a payout cannot be expressed in pain.001, or None."""
    if not 1 <= len(p.idempotency_key) <= MAX_ID or not p.idempotency_key.isprintable():
        return f"EndToEndId must be 1..{MAX_ID} printable characters"
    for name, value, limit in (
        ("beneficiary_name", p.beneficiary_name, 140),
        ("reference", p.reference, 140),
        ("account", p.account, 34),
        ("provider", p.provider, 35),
    ):
        if not value or len(value) > limit or not value.isprintable():
            return f"{name} must be 1..{limit} printable characters"
    return None


def build_pain001(
    payouts: Sequence[PayoutInstruction], debtor: Debtor, now: datetime, execution: date
) -> tuple[str, bytes]:
    """Build one pain.001.001.09 for the batch; return ``(MsgId, XML bytes)``."""
    ns = PAIN001_NS
    msg_id = message_id([p.idempotency_key for p in payouts])
    total = str(sum((p.amount.amount for p in payouts), Decimal(0)))
    doc = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})
    root = sub(doc, ns, "CstmrCdtTrfInitn")
    hdr = sub(root, ns, "GrpHdr")
    sub(hdr, ns, "MsgId", msg_id)
    sub(hdr, ns, "CreDtTm", now.isoformat(timespec="seconds"))
    sub(hdr, ns, "NbOfTxs", str(len(payouts)))
    sub(hdr, ns, "CtrlSum", total)
    sub(sub(hdr, ns, "InitgPty"), ns, "Nm", debtor.name)
    pmt = sub(root, ns, "PmtInf")
    sub(pmt, ns, "PmtInfId", msg_id)
    sub(pmt, ns, "PmtMtd", "TRF")
    sub(pmt, ns, "NbOfTxs", str(len(payouts)))
    sub(pmt, ns, "CtrlSum", total)
    sub(sub(pmt, ns, "ReqdExctnDt"), ns, "Dt", execution.isoformat())
    sub(sub(pmt, ns, "Dbtr"), ns, "Nm", debtor.name)
    sub(sub(sub(sub(pmt, ns, "DbtrAcct"), ns, "Id"), ns, "Othr"), ns, "Id", debtor.account)
    sub(sub(sub(pmt, ns, "DbtrAgt"), ns, "FinInstnId"), ns, "BICFI", debtor.bic)
    for p in payouts:
        tx = sub(pmt, ns, "CdtTrfTxInf")
        sub(sub(tx, ns, "PmtId"), ns, "EndToEndId", p.idempotency_key)
        amt = sub(tx, ns, "Amt")
        sub(amt, ns, "InstdAmt", p.amount.amount_str(), Ccy=p.amount.currency)
        agent = sub(sub(sub(tx, ns, "CdtrAgt"), ns, "FinInstnId"), ns, "Othr")
        sub(agent, ns, "Id", p.provider)
        sub(sub(tx, ns, "Cdtr"), ns, "Nm", p.beneficiary_name)
        sub(sub(sub(sub(tx, ns, "CdtrAcct"), ns, "Id"), ns, "Othr"), ns, "Id", p.account)
        sub(sub(tx, ns, "RmtInf"), ns, "Ustrd", p.reference)
    return msg_id, etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True, slots=True)
class Pain001Tx:
    """One transaction read back from a pain.001 (the simulator's side)."""

    end_to_end_id: str
    amount: Money
    creditor: str
    account: str
    provider: str
    remittance: str

    def fingerprint(self) -> tuple[str, ...]:
        return (
            self.end_to_end_id,
            str(self.amount),
            self.creditor,
            self.account,
            self.provider,
            self.remittance,
        )


def parse_pain001(data: bytes) -> tuple[str, list[Pain001Tx]]:
    """Parse a pain.001.001.09 into ``(MsgId, transactions)``; strict about what we rely on."""
    namespace, root = document(parse(data, "pain.001"), "pain.001")
    if namespace != PAIN001_NS or localname(root) != "CstmrCdtTrfInitn":
        raise InvalidMessageError("unknown_type", f"expected pain.001.001.09, got {namespace!r}")
    msg_id = text(root, "GrpHdr", "MsgId")
    if not msg_id or len(msg_id) > MAX_ID:
        raise InvalidMessageError("schema_violation", "GrpHdr/MsgId: 1..35 characters")
    txs: list[Pain001Tx] = []
    for pmt in all_(root, "PmtInf"):
        for n, tx in enumerate(all_(pmt, "CdtTrfTxInf"), start=1):
            e2e = text(tx, "PmtId", "EndToEndId")
            instd = child(tx, "Amt", "InstdAmt")
            fields = {
                "Cdtr/Nm": text(tx, "Cdtr", "Nm"),
                "CdtrAcct/Id/Othr/Id": text(tx, "CdtrAcct", "Id", "Othr", "Id"),
                "CdtrAgt/FinInstnId/Othr/Id": text(tx, "CdtrAgt", "FinInstnId", "Othr", "Id"),
                "RmtInf/Ustrd": text(tx, "RmtInf", "Ustrd"),
            }
            if not e2e or instd is None:
                raise InvalidMessageError("schema_violation", f"CdtTrfTxInf {n}: id/amount")
            for name, value in fields.items():
                if value is None:
                    raise InvalidMessageError("schema_violation", f"CdtTrfTxInf {n}: {name}")
            try:
                money = Money.parse((instd.text or "").strip(), instd.get("Ccy", ""))
            except ValueError as exc:
                raise InvalidMessageError(
                    "schema_violation", f"CdtTrfTxInf {n}: InstdAmt {exc}"
                ) from None
            txs.append(Pain001Tx(e2e, money, *(v or "" for v in fields.values())))
    declared = text(root, "GrpHdr", "NbOfTxs")
    if not txs or declared != str(len(txs)):
        raise InvalidMessageError("schema_violation", "GrpHdr/NbOfTxs does not match")
    return msg_id, txs


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One transaction's status for ``build_pain002``."""

    end_to_end_id: str
    code: str  # TxSts
    reason: str | None = None
    rail_reference: str | None = None


def build_pain002(
    report_id: str,
    original_msg_id: str,
    group_status: str | None,
    entries: Sequence[StatusEntry],
    now: datetime,
) -> bytes:
    """Build a pain.002.001.10 status report."""
    ns = PAIN002_NS
    doc = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})
    root = sub(doc, ns, "CstmrPmtStsRpt")
    hdr = sub(root, ns, "GrpHdr")
    sub(hdr, ns, "MsgId", report_id)
    sub(hdr, ns, "CreDtTm", now.isoformat(timespec="seconds"))
    grp = sub(root, ns, "OrgnlGrpInfAndSts")
    sub(grp, ns, "OrgnlMsgId", original_msg_id)
    sub(grp, ns, "OrgnlMsgNmId", "pain.001.001.09")
    if group_status:
        sub(grp, ns, "GrpSts", group_status)
    if entries:
        pmt = sub(root, ns, "OrgnlPmtInfAndSts")
        sub(pmt, ns, "OrgnlPmtInfId", original_msg_id)
        for e in entries:
            tx = sub(pmt, ns, "TxInfAndSts")
            sub(tx, ns, "OrgnlEndToEndId", e.end_to_end_id)
            sub(tx, ns, "TxSts", e.code)
            if e.reason:
                sub(sub(sub(tx, ns, "StsRsnInf"), ns, "Rsn"), ns, "Cd", e.reason)
            if e.rail_reference:
                sub(tx, ns, "AcctSvcrRef", e.rail_reference)
    return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))  # lxml is untyped


def parse_pain002(data: bytes) -> tuple[str, str | None, list[PayoutStatus]]:
    """Parse a pain.002 (any version) into ``(OrgnlMsgId, GrpSts, statuses)``.

    Raises:
        InvalidMessageError: unknown_type / schema_violation naming the transaction.
    """
    namespace, root = document(parse(data, "pain.002"), "pain.002")
    if not namespace.startswith(PAIN002_NS[:-3]) or localname(root) != "CstmrPmtStsRpt":
        raise InvalidMessageError("unknown_type", f"expected pain.002, got {namespace!r}")
    created_text = text(root, "GrpHdr", "CreDtTm")
    try:
        created = datetime.fromisoformat(created_text) if created_text else None
    except ValueError:
        raise InvalidMessageError("schema_violation", "GrpHdr/CreDtTm invalid") from None
    original = text(root, "OrgnlGrpInfAndSts", "OrgnlMsgId")
    if not original:
        raise InvalidMessageError("schema_violation", "OrgnlGrpInfAndSts/OrgnlMsgId missing")
    group = text(root, "OrgnlGrpInfAndSts", "GrpSts")
    statuses: list[PayoutStatus] = []
    for pmt in all_(root, "OrgnlPmtInfAndSts"):
        for n, tx in enumerate(all_(pmt, "TxInfAndSts"), start=1):
            e2e, code = text(tx, "OrgnlEndToEndId"), text(tx, "TxSts")
            if not e2e:
                raise InvalidMessageError("schema_violation", f"TxInfAndSts {n}: no EndToEndId")
            if code not in TX_STATES:
                raise InvalidMessageError("schema_violation", f"TxInfAndSts {n}: TxSts {code!r}")
            reason = text(tx, "StsRsnInf", "Rsn", "Cd")
            state = TX_STATES[code]
            if state == PayoutState.paid and reason == RETURNED_REASON:
                state = PayoutState.returned
            statuses.append(
                PayoutStatus(
                    e2e, state, rail_reference=text(tx, "AcctSvcrRef"), reason=reason, at=created
                )
            )
    return original, group, statuses
