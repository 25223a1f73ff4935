"""camt.053/054 read as a stream: records, kinds, quarantined entries, and every proof both ways.

The public samples (tests/fixtures/camt053, genkgo/camt) go through ``scan_statement`` too: their
lines must equal ``parse_camt``'s (checked against genkgo's own parse in test_camt.py) and their
balances are reported exactly as the files state them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest

from adapters.rails.iso20022 import Iso20022Config, Iso20022Rail
from adapters.rails.iso20022.camt import parse_camt, scan_camt
from gateway.errors import InvalidMessageError
from gateway.ports.rail import (
    BadLine,
    LineKind,
    StatementItem,
    StatementLine,
    StatementProof,
    StatementRecord,
)
from tests.fixtures import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "camt053"
NS8 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
NS54 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"


def _scan(data: bytes) -> list[StatementItem]:
    return list(scan_camt(io.BytesIO(data)))


def _lines(items: Sequence[StatementItem]) -> list[StatementLine]:
    return [i for i in items if isinstance(i, StatementLine)]


def _proofs(items: Sequence[StatementItem], check: str) -> list[StatementProof]:
    return [i for i in items if isinstance(i, StatementProof) and i.check == check]


def _bal(code: str, amount: str, cdi: str = "CRDT", ccy: str = "MYR") -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{ccy}\">{amount}"
            f"</Amt><CdtDbtInd>{cdi}</CdtDbtInd><Dt><Dt>2025-01-31</Dt></Dt></Bal>")


def _doc(body: str, *, seq: str = "<ElctrncSeqNb>7</ElctrncSeqNb>", ns: str = NS8,
         record: str = "Stmt", wrapper: str = "BkToCstmrStmt") -> bytes:
    return (
        f'<Document xmlns="{ns}"><{wrapper}><GrpHdr><MsgId>M1</MsgId>'
        "<CreDtTm>2025-02-01T00:10:00+08:00</CreDtTm></GrpHdr>"
        f"<{record}><Id>S1</Id>{seq}<CreDtTm>2025-02-01T00:10:00+08:00</CreDtTm>"
        "<FrToDt><FrDtTm>2025-01-31T00:00:00+08:00</FrDtTm>"
        "<ToDtTm>2025-01-31T23:59:59+08:00</ToDtTm></FrToDt>"
        f"<Acct><Id><Othr><Id>ACC-1</Id></Othr></Id></Acct>{body}</{record}>"
        f"</{wrapper}></Document>"
    ).encode()


def _ntry(amount: str, cdi: str = "DBIT", *, code: tuple[str, str, str] = ("PMNT", "ICDT",
          "ESCT"), rvsl: str = "false", tx: str = "", ref: str = "R1", ccy: str = "MYR",
          extra: str = "") -> str:
    return (
        f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{cdi}</CdtDbtInd>'
        f"<RvslInd>{rvsl}</RvslInd><Sts><Cd>BOOK</Cd></Sts>"
        "<BookgDt><Dt>2025-01-31</Dt></BookgDt><ValDt><Dt>2025-01-31</Dt></ValDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef><BkTxCd><Domn><Cd>{code[0]}</Cd><Fmly><Cd>{code[1]}"
        f"</Cd><SubFmlyCd>{code[2]}</SubFmlyCd></Fmly></Domn></BkTxCd>{extra}"
        f"<NtryDtls>{tx}</NtryDtls></Ntry>"
    )


def _tx(e2e: str, amount: str | None = None, *, uetr: str = "", reason: str = "") -> str:
    amt = f'<AmtDtls><TxAmt><Amt Ccy="MYR">{amount}</Amt></TxAmt></AmtDtls>' if amount else ""
    ret = f"<RtrInf><Rsn><Cd>{reason}</Cd></Rsn></RtrInf>" if reason else ""
    u = f"<UETR>{uetr}</UETR>" if uetr else ""
    return f"<TxDtls><Refs><EndToEndId>{e2e}</EndToEndId>{u}</Refs>{amt}{ret}</TxDtls>"


UETR = "eb6305c9-1f7f-49de-aed0-16487c27b42d"


def test_record_then_lines_then_proofs_with_kinds() -> None:
    body = (
        _bal("OPBD", "1000.00") + _bal("CLBD", "945.50")
        + _ntry("100.00", tx=_tx("p-1", uetr=UETR), ref="BK1")
        + _ntry("100.00", "CRDT", code=("PMNT", "ICDT", "RRTN"), tx=_tx("p-2", reason="AC04"),
                ref="BK2")
        + _ntry("50.00", "CRDT", rvsl="true", tx=_tx("p-3"), ref="BK3")
        + _ntry("0.50", code=("ACMT", "MDOP", "CHRG"), ref="BK4")
        + _ntry("5.00", code=("FORX", "SPOT", "OTHR"), ref="BK5")
        + _ntry("1000.00", "CRDT", code=("PMNT", "RCDT", "ESCT"), ref="BK6")
        + _ntry("1.00", "CRDT", code=("PMNT", "RCDT", "ESCT"), tx=_tx("p-7", reason="AC01"),
                ref="BK7")
        + _ntry("1100.00", code=("PMNT", "ICDT", "ESCT"), ref="BK8")
    )
    items = _scan(_doc(body))
    record = items[0]
    assert record == StatementRecord("S1", "camt.053", "ACC-1", date(2025, 1, 31), 7,
                                     record.created_at)  # type: ignore[union-attr]
    lines = _lines(items)
    assert [(x.line_no, x.kind) for x in lines] == [
        (1, LineKind.payout), (2, LineKind.returned), (3, LineKind.reversal), (4, LineKind.fee),
        (5, LineKind.fx), (6, LineKind.other), (7, LineKind.returned), (8, LineKind.payout),
    ]
    assert lines[0].uetr == UETR and lines[0].end_to_end_id == "p-1"
    assert lines[0].batch_ref is None
    assert lines[1].return_reason == "AC04" and lines[6].return_reason == "AC01"
    assert [p.check for p in items[-2:] if isinstance(p, StatementProof)] == [
        "balance", "structure"]
    assert items[-1] == StatementProof("S1", "structure", True, "Stmt complete: 8 entries")
    [balance] = _proofs(items, "balance")
    assert balance.ok, balance.detail
    assert balance.detail == (
        "MYR: opening OPBD 1000.00 + credits 1151.00 - debits 1205.50 = 945.50; closing CLBD "
        "945.50: holds"
    )


def test_balance_holds() -> None:
    body = _bal("OPBD", "1000.00") + _bal("CLBD", "850.00") + _ntry("200.00") + _ntry(
        "50.00", "CRDT", code=("PMNT", "RCDT", "ESCT"))
    [proof] = _proofs(_scan(_doc(body)), "balance")
    assert proof.ok
    assert proof.detail == ("MYR: opening OPBD 1000.00 + credits 50.00 - debits 200.00 = 850.00;"
                            " closing CLBD 850.00: holds")


def test_balance_that_does_not_add_up_fails() -> None:
    body = _bal("OPBD", "1000.00") + _bal("CLBD", "850.01") + _ntry("150.00")
    [proof] = _proofs(_scan(_doc(body)), "balance")
    assert not proof.ok and "does not add up (off by 0.01)" in proof.detail


def test_negative_balances_and_prcd_as_opening() -> None:
    body = _bal("PRCD", "10.00", "DBIT") + _bal("CLBD", "110.00", "DBIT") + _ntry("100.00")
    [proof] = _proofs(_scan(_doc(body)), "balance")
    assert proof.ok and "opening PRCD -10.00" in proof.detail


def test_missing_balances_fail() -> None:
    [none] = _proofs(_scan(_doc("")), "balance")
    assert not none.ok and "balances missing" in none.detail
    [closing] = _proofs(_scan(_doc(_bal("OPBD", "1.00") + _ntry("1.00"))), "balance")
    assert not closing.ok and "CLBD" in closing.detail
    [per_ccy] = _proofs(_scan(_doc(_bal("OPBD", "1.00") + _bal("CLBD", "1.00")
                                   + _ntry("1.00", ccy="EUR"))), "balance")[:1]
    assert not per_ccy.ok and per_ccy.detail.startswith("EUR: balances missing (OPBD and CLBD)")


def test_batched_entry_gives_lines_with_batch_ref_and_a_proof_that_holds() -> None:
    txs = _tx("k1", "10.00") + _tx("k2", "20.00")
    body = (_bal("OPBD", "100.00") + _bal("CLBD", "70.00")
            + _ntry("30.00", ref="BATCH-1", tx="<Btch><NbOfTxs>2</NbOfTxs></Btch>" + txs))
    items = _scan(_doc(body))
    lines = _lines(items)
    assert [(x.end_to_end_id, x.amount.minor, x.batch_ref, x.kind) for x in lines] == [
        ("k1", 1000, "BATCH-1", LineKind.payout), ("k2", 2000, "BATCH-1", LineKind.payout)]
    [batch] = _proofs(items, "batch")
    assert batch.ok and "2 transactions add up to 30.00" in batch.detail
    assert items.index(batch) == items.index(lines[-1]) + 1  # after the lines it covers
    assert _proofs(items, "balance")[0].ok


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (_ntry("30.01", ref="B", tx=_tx("k1", "10.00") + _tx("k2", "20.00")), "add up to 30.00"),
        (_ntry("30.00", ref="B", tx="<Btch><NbOfTxs>3</NbOfTxs></Btch>" + _tx("k1", "10.00")
               + _tx("k2", "20.00")), "NbOfTxs says 3"),
        (_ntry("30.00", ref="B", tx='<Btch><NbOfTxs>2</NbOfTxs><TtlAmt Ccy="MYR">31.00</TtlAmt>'
               "</Btch>" + _tx("k1", "10.00") + _tx("k2", "20.00")), "TtlAmt says"),
    ],
)
def test_batch_proof_fails(entry: str, why: str) -> None:
    items = _scan(_doc(entry))
    [batch] = _proofs(items, "batch")
    assert not batch.ok and why in batch.detail
    assert len(_lines(items)) == 2  # the lines are still read and reported
    with pytest.raises(InvalidMessageError) as err:
        parse_camt(_doc(entry))
    assert err.value.extra["field"] == "TxDtls"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ('<Ntry><Amt Ccy="MYR">1.001</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>',
         "Amt"),
        ('<Ntry><Amt Ccy="MYR">1.00</Amt><CdtDbtInd>X</CdtDbtInd><Sts>BOOK</Sts></Ntry>',
         "CdtDbtInd"),
        ('<Ntry><Amt Ccy="MYR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>'
         "<BookgDt><Dt>2025-13-01</Dt></BookgDt></Ntry>", "BookgDt/Dt"),
        ('<Ntry><Amt Ccy="MYR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><RvslInd>maybe</RvslInd>'
         "<Sts>BOOK</Sts></Ntry>", "RvslInd"),
    ],
)
def test_bad_entry_is_quarantined_and_reading_goes_on(bad: str, field: str) -> None:
    body = _bal("OPBD", "10.00") + _bal("CLBD", "7.00") + _ntry("1.00") + bad + _ntry("1.00")
    items = _scan(_doc(body))
    [quarantined] = [i for i in items if isinstance(i, BadLine)]
    assert quarantined.line_no == 2 and f"entry 2, {field}:" in quarantined.reason
    assert quarantined.text.startswith("<Ntry") and len(quarantined.text) <= 500
    assert [x.line_no for x in _lines(items)] == [1, 3]
    [balance] = _proofs(items, "balance")
    if field in ("Amt", "CdtDbtInd"):  # the entry's money is unknown: the balance is unproved
        assert not balance.ok and "cannot be proved" in balance.detail
    else:  # the bad entry's booked debit is still read for the balance: 10 - 1 - 1 - 1 = 7
        assert balance.ok, balance.detail


def test_document_that_breaks_off_fails_structure_and_ends() -> None:
    whole = _doc(_bal("OPBD", "10.00") + _bal("CLBD", "9.00") + _ntry("1.00", ref="A")
                 + _ntry("1.00", ref="B"))
    cut = whole[: whole.index(b"<AcctSvcrRef>B") + 5]
    items = _scan(cut)
    assert isinstance(items[0], StatementRecord) and len(_lines(items)) == 1
    last = items[-1]
    assert isinstance(last, StatementProof) and last.check == "structure" and not last.ok
    assert "breaks off" in last.detail and last.statement_id == "S1"
    with pytest.raises(InvalidMessageError):
        parse_camt(cut)


def test_not_a_statement_at_all_raises_before_anything() -> None:
    with pytest.raises(InvalidMessageError) as err:
        _scan(_doc("", ns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"))
    assert err.value.code == "unknown_type"
    for data in (b"<not xml", b"", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]>'
                 b'<Document xmlns="' + NS8.encode() + b'"><BkToCstmrStmt>&x;</BkToCstmrStmt>'
                 b"</Document>"):
        with pytest.raises(InvalidMessageError) as err:
            _scan(data)
        assert err.value.code == "schema_violation"


def test_record_without_id_fails_structure() -> None:
    data = _doc(_ntry("1.00")).replace(b"<Id>S1</Id>", b"")
    last = _scan(data)[-1]
    assert isinstance(last, StatementProof) and last.check == "structure" and "no Id" in last.detail


def test_camt054_notification_has_no_balance_proof() -> None:
    body = _ntry("5.00", tx=_tx("n-1", uetr=UETR)) + _ntry(
        "9.00", ref="BB", tx=_tx("n-2", "4.00") + _tx("n-3", "5.00"))
    items = _scan(_doc(body, ns=NS54, record="Ntfctn", wrapper="BkToCstmrDbtCdtNtfctn"))
    assert isinstance(items[0], StatementRecord) and items[0].kind == "camt.054"
    assert [x.end_to_end_id for x in _lines(items)] == ["n-1", "n-2", "n-3"]
    assert not _proofs(items, "balance") and _proofs(items, "batch")[0].ok


SAMPLES = sorted(FIXTURES.glob("*.xml"))
# The public samples' own balances: some state OPBD in EUR and CLBD in SEK, or a CLBD the
# entries do not reach; the proofs say so rather than trust them.
BALANCES = {
    "camt053.v2.five.decimals.xml": [False],
    "camt053.v2.minimal.xml": [False, False],
    "camt053.v2.multi.statement.xml": [True, True],
    "camt053.v4.xml": [False, False],
    "camt053.v8.xml": [False, False],
    "camt054.v8-with-UETR.xml": [],
}


@pytest.mark.parametrize("xml", SAMPLES, ids=lambda p: p.name)
def test_public_samples_through_scan_statement(xml: Path) -> None:
    path = xml
    rail = Iso20022Rail(Iso20022Config(base_url="http://127.0.0.1:9", api_key_id="k",
                                       hmac_secret="s", callback_secret="c"))
    with path.open("rb") as source:
        items = list(rail.scan_statement(source))
    assert _lines(items) == parse_camt(path.read_bytes())
    records = [i for i in items if isinstance(i, StatementRecord)]
    assert records and all(r.kind == path.name[:4] + "." + path.name[4:7] for r in records)
    assert not [i for i in items if isinstance(i, BadLine)]
    assert [p.ok for p in _proofs(items, "balance")] == BALANCES[path.name]
    assert [p.ok for p in _proofs(items, "structure")] == [True] * len(records)


def test_sample_records_carry_sequence_and_business_date() -> None:
    with (FIXTURES / "camt053.v2.multi.statement.xml").open("rb") as source:
        records = [i for i in scan_camt(source) if isinstance(i, StatementRecord)]
    assert [(r.statement_id, r.sequence, r.business_date) for r in records] == [
        ("253EURNL26VAYB8060476890", 12312, date(2007, 10, 18)),
        # No FrToDt: the statement does not say its day (its CreDtTm may be the next morning).
        ("254EURNL26VAYB8060476890", None, None),
    ]
    with (FIXTURES / "camt054.v8-with-UETR.xml").open("rb") as source:
        [line] = _lines(list(scan_camt(source)))
    assert line.uetr == "255ae394-9965-4438-ac86-f406feada396" and line.kind == LineKind.payout


def test_every_entry_without_dates_falls_back_to_its_records_creation_day() -> None:
    undated = '<Ntry><Amt Ccy="MYR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>'
    group = b"<GrpHdr><MsgId>M1</MsgId><CreDtTm>2025-02-0"
    data = _doc(undated * 3).replace(group + b"1", group + b"2")  # a day after the record
    found = [(x.booked_on, x.extra["booked_on_source"]) for x in _lines(_scan(data))]
    assert found == [(date(2025, 2, 1), "CreDtTm")] * 3  # also after the header is freed


@pytest.mark.parametrize("sequence", ["9" * 5000, "\u00b2", "1" * 19, "7a"])
def test_an_electronic_sequence_number_that_is_no_number_fails_a_proof(sequence: str) -> None:
    body = _bal("OPBD", "10.00") + _bal("CLBD", "9.00") + _ntry("1.00")
    items = _scan(_doc(body, seq=f"<ElctrncSeqNb>{sequence}</ElctrncSeqNb>"))
    record = items[0]
    assert isinstance(record, StatementRecord) and record.sequence is None
    [bad] = _proofs(items, "sequence")
    assert not bad.ok and "ElctrncSeqNb" in bad.detail and len(bad.detail) < 200
    assert _proofs(items, "balance")[0].ok


def test_an_amount_larger_than_any_payment_is_quarantined() -> None:
    body = (_bal("OPBD", "10.00") + _bal("CLBD", "9.00") + _ntry("1.00")
            + _ntry("12345678901234567.00"))
    items = _scan(_doc(body))
    [quarantined] = [i for i in items if isinstance(i, BadLine)]
    assert "more than 15 whole digits" in quarantined.reason


@pytest.mark.parametrize("begins, day", [
    ("2025-01-31T00:00:00+08:00", date(2025, 1, 31)),
    ("2025-01-30T16:00:00Z", date(2025, 1, 31)),  # Kuala Lumpur's midnight, written in UTC
    ("2025-01-30T16:00:00+00:00", date(2025, 1, 31)),
    ("2025-01-31T09:00:00+01:00", date(2025, 1, 31)),
    ("2025-01-31T00:00:00", date(2025, 1, 31)),  # no offset: the day as written
])
def test_the_business_date_is_the_day_the_period_begins_in_kuala_lumpur(begins: str,
                                                                        day: date) -> None:
    data = _doc(_bal("OPBD", "1.00") + _bal("CLBD", "1.00")).replace(
        b"2025-01-31T00:00:00+08:00", begins.encode())
    record = _scan(data)[0]
    assert isinstance(record, StatementRecord) and record.business_date == day
