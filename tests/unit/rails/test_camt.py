"""camt.053/054 reader against the public genkgo/camt samples and their independent parse.

Each ``NAME.expected.json`` is genkgo/camt's own parse (PHP DTOs serialised with ``getX`` keys,
repeated objects replaced by ``"__RECURSIVITY__"``). Mapping to ours:

- ``getEntries[i].getAmount.getAmount``: signed minor units (negative for DBIT); ours is the
  positive ``amount.minor`` plus ``credit``. ``getCurrency.getCode`` -> ``amount.currency``.
- ``getBookingDate``/``getValueDate`` ``"0"``: ISO date-time normalised to UTC -> our dates.
- ``getAccountServicerReference`` -> ``rail_reference``; ``getStatus`` -> ``status``;
  ``getReversalIndicator`` -> ``reversal``; ``getRecord.getId`` -> ``statement_id``.
- ``getTransactionDetails[j].getReference.getEndToEndId`` -> ``end_to_end_id``;
  ``getUuidEndToEndReference`` -> ``extra["uetr"]``. A details list of ``["__RECURSIVITY__"]``
  is the entry's single ``getTransactionDetail``.

Known quirk of the oracle: for the multi-statement sample its flattened ``getEntries`` keeps only
the last statement's entry (both entries have index 0), though ``getRecords`` lists two
statements. We therefore check every oracle entry against ours by (statement id, entry index),
and check the entry count against the XML itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.rails.iso20022.camt import parse_camt
from gateway.errors import InvalidMessageError
from gateway.ports.rail import StatementLine
from tests.fixtures import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "camt053"
SAMPLES = sorted(FIXTURES.glob("*.xml"))


def _details(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        entry["getTransactionDetail"] if d == "__RECURSIVITY__" else d
        for d in entry["getTransactionDetails"]
    ]


def _date(value: dict[str, str] | None) -> str | None:
    return None if value is None else datetime.fromisoformat(value["0"]).date().isoformat()


def test_fixtures_are_present() -> None:
    assert len(SAMPLES) == 6


@pytest.mark.parametrize("xml", SAMPLES, ids=lambda p: p.name)
def test_matches_genkgo_parse(xml: Path) -> None:
    expected = json.loads(xml.with_name(xml.stem + ".expected.json").read_text(encoding="utf-8"))
    lines = parse_camt(xml.read_bytes())

    # Entry count against the XML itself (every Ntry gives >= 1 line; these have 1 TxDtls each).
    ntry = etree.fromstring(xml.read_bytes()).findall(".//{*}Ntry")
    assert len(lines) == len(ntry)
    assert len({line.statement_id for line in lines}) == len(expected["getRecords"])

    index: dict[tuple[str, int], StatementLine] = {
        (line.statement_id, int(line.extra["entry_index"])): line for line in lines
    }
    assert expected["getEntries"], "the oracle has entries"
    for entry in expected["getEntries"]:
        record = entry["getRecord"]
        ours = index[(record["getId"], entry["getIndex"])]
        signed = int(entry["getAmount"]["getAmount"])
        assert ours.amount.minor == abs(signed)
        assert ours.credit == (signed >= 0) == (entry["getCreditDebitIndicator"] == "CRDT")
        assert ours.amount.currency == entry["getAmount"]["getCurrency"]["getCode"]
        assert ours.status == entry["getStatus"]
        assert ours.reversal == bool(entry["getReversalIndicator"])
        assert ours.rail_reference == entry["getAccountServicerReference"]
        booked = _date(entry["getBookingDate"])
        if booked is None:
            assert ours.extra["booked_on_source"] != "BookgDt"
        else:
            assert ours.booked_on.isoformat() == booked
        valued = _date(entry["getValueDate"])
        assert (ours.value_on.isoformat() if ours.value_on else None) == valued
        [detail] = _details(entry)
        ref = detail["getReference"] or {}
        assert ours.end_to_end_id == ref.get("getEndToEndId")
        assert ours.extra.get("uetr") == ref.get("getUuidEndToEndReference")


def test_version_specific_fields() -> None:
    v8 = parse_camt((FIXTURES / "camt053.v8.xml").read_bytes())[0]
    assert v8.extra["version"] == "camt.053.001.08"  # <Sts><Cd>BOOK</Cd></Sts>, BookgDt/DtTm
    assert v8.status == "BOOK" and v8.extra["booked_at"] == "2014-12-31T13:15:00+01:00"
    assert v8.extra["tx_amount"] == "0.00 SEK"  # the detail's own amount is kept aside
    five = parse_camt((FIXTURES / "camt053.v2.five.decimals.xml").read_bytes())[0]
    assert five.amount.amount_str() == "8.85"  # "8.850" is exact in cents, never a float
    notif = parse_camt((FIXTURES / "camt054.v8-with-UETR.xml").read_bytes())[0]
    assert notif.amount.minor == 20000000 and not notif.credit
    assert notif.booked_on.isoformat() == "2007-10-18" and notif.extra["booked_on_source"] == (
        "CreDtTm"
    )


NS8 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def _statement(entries: str, ns: str = NS8) -> bytes:
    return (
        f'<Document xmlns="{ns}"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr>'
        f"<Stmt><Id>S1</Id><Acct><Id><Othr><Id>A</Id></Othr></Id></Acct>{entries}</Stmt>"
        "</BkToCstmrStmt></Document>"
    ).encode()


BATCH = """<Ntry><Amt Ccy="MYR">30.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2025-01-31</Dt></BookgDt><AcctSvcrRef>B1</AcctSvcrRef><NtryDtls>
<TxDtls><Refs><EndToEndId>k1</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="MYR">10.00</Amt>
</TxAmt></AmtDtls></TxDtls>
<TxDtls><Refs><EndToEndId>k2</EndToEndId></Refs><Amt Ccy="MYR">{second}</Amt>
<RtrInf><Rsn><Cd>AC06</Cd></Rsn></RtrInf></TxDtls>
</NtryDtls></Ntry>"""


def test_batched_entry_gives_a_line_per_transaction() -> None:
    first, second = parse_camt(_statement(BATCH.format(second="20.00")))
    assert (first.end_to_end_id, first.amount.minor) == ("k1", 1000)
    assert (second.end_to_end_id, second.amount.minor, second.return_reason) == ("k2", 2000, "AC06")
    assert first.rail_reference == "B1" and [first.line_no, second.line_no] == [1, 2]


def test_batched_entry_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(InvalidMessageError) as err:
        parse_camt(_statement(BATCH.format(second="20.01")))
    assert err.value.extra["entry"] == 1 and err.value.extra["field"] == "TxDtls"


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (
            '<Ntry><Amt Ccy="MYR">1.001</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>',
            "Amt",
        ),
        ('<Ntry><Amt Ccy="XXX">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>', "Amt"),
        ("<Ntry><Amt>1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>", "Amt@Ccy"),
        (
            '<Ntry><Amt Ccy="MYR">1.00</Amt><CdtDbtInd>X</CdtDbtInd><Sts>BOOK</Sts></Ntry>',
            "CdtDbtInd",
        ),
        (
            '<Ntry><Amt Ccy="MYR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>'
            "<BookgDt><Dt>2025-13-01</Dt></BookgDt></Ntry>",
            "BookgDt/Dt",
        ),
    ],
)
def test_errors_name_entry_and_field(entry: str, field: str) -> None:
    with pytest.raises(InvalidMessageError) as err:
        parse_camt(_statement(entry))
    assert err.value.code == "schema_violation" and err.value.extra["field"] == field


def test_hardened_parser_refuses_entities_and_unknown_documents() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="' + NS8.encode() + b'"><BkToCstmrStmt>&x;</BkToCstmrStmt></Document>'
    )
    with pytest.raises(InvalidMessageError):
        parse_camt(evil)
    with pytest.raises(InvalidMessageError) as err:
        parse_camt(_statement("", ns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"))
    assert err.value.code == "unknown_type"
    with pytest.raises(InvalidMessageError):
        parse_camt(b"<not xml")
