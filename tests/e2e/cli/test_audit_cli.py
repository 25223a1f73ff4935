"""`gateway audit chain|checkpoint|verify` as the operator and an outsider run them (the real
entry point, as subprocesses), on both databases: a checkpoint exported to a file catches the
insider's rewrite that plain verify passes; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.composition import Hub
from gateway.config import Settings
from gateway.storage.tables import messages
from tests.support.insider import rewrite_record

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def _audit(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_DATABASE_URL": settings.database_url,
                "GATEWAY_PARTNERS_FILE": str(settings.partners_file),
                "GATEWAY_SIGNING_KEY_FILE": str(settings.signing_key_file)})
    return subprocess.run([sys.executable, "-m", "gateway.cli", "audit", *args], env=env,
                          capture_output=True, text=True, timeout=120)


async def _accept(client, partner, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        env = partner.envelope()
        body, headers = partner.signed(env)
        assert (await client.post("/v1/messages", content=body, headers=headers)).status_code \
            == 202
        ids.append(env["id"])
    return ids


async def test_checkpoint_file_catches_the_insider_rewrite(client, hub: Hub, settings: Settings,
                                                           bpjstk, tmp_path: Path) -> None:
    ids = await _accept(client, bpjstk, 4)
    assert _audit(settings, "chain").stdout.strip() == "chained 4 record(s)"
    out = tmp_path / "offsite" / "checkpoints.json"
    out.parent.mkdir()
    made = _audit(settings, "checkpoint", "--out", str(out))
    assert made.returncode == 0 and made.stdout.startswith("checkpoint seq 4 "), made.stderr
    again = _audit(settings, "checkpoint", "--out", str(out))
    assert again.stdout.startswith("head already checkpointed: seq 4"), again.stdout
    exported = json.loads(out.read_text())
    assert [c["seq"] for c in exported["checkpoints"]] == [4]
    # An outsider holds only the hub's published JWKS.
    jwks = tmp_path / "hub.jwks.json"
    jwks.write_text(json.dumps(exported["hub_jwks"]))
    good = _audit(settings, "verify", "--checkpoint", str(out), "--hub-jwks", str(jwks),
                  "--signatures")
    assert good.returncode == 0, good.stderr
    assert "ok: 4 records, 1 checkpoint(s) matched, 8 signatures checked" in good.stdout

    async with hub.engine.begin() as conn:
        pk = (await conn.execute(select(messages.c.pk)
                                 .where(messages.c.message_id == ids[2]))).scalar_one()
        wire = (await conn.execute(select(messages.c.wire)
                                   .where(messages.c.pk == pk))).scalar_one()
        await rewrite_record(conn, "messages", pk,
                             {"wire": wire.replace(b"KLM-2026-0042", b"KLM-2026-0043")})
    assert _audit(settings, "verify").returncode == 0  # consistent with itself
    bad = _audit(settings, "verify", "--checkpoint", str(out), "--hub-jwks", str(jwks))
    assert bad.returncode == 1
    assert "history in seq 1..4 was rewritten" in bad.stderr
    assert f"the first rewritten record: messages pk {pk} (message {ids[2]} from ID-BPJSTK): " \
           "the partner signature does not verify" in bad.stderr, bad.stderr


async def test_bad_checkpoint_input_is_one_line_and_exit_2(settings: Settings,
                                                           tmp_path: Path) -> None:
    cases = {
        "missing": (["--checkpoint", str(tmp_path / "nope.json")], "does not exist"),
        "not-json": (["--checkpoint", str(tmp_path / "bad.json")], "is not JSON"),
        "bad-jwks": (["--checkpoint", str(tmp_path / "bad.json"), "--hub-jwks",
                      str(tmp_path / "none.json")], "hub JWKS file"),
    }
    (tmp_path / "bad.json").write_text("{")
    for name, (args, expected) in cases.items():
        result = _audit(settings, "verify", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1 and "Traceback" not in result.stderr, (name, result.stderr)
        assert lines[0].startswith("gateway: ") and expected in lines[0], (name, lines[0])
    result = _audit(settings, "checkpoint", "--out", str(tmp_path / "no" / "dir" / "f.json"))
    assert result.returncode == 2 and "--out" in result.stderr, result.stderr


async def test_payments_are_counted_and_a_rewritten_payment_is_named(
        client, hub: Hub, settings: Settings, backoffice_token: str, clock,
        tmp_path: Path) -> None:
    from datetime import timedelta

    from gateway.storage.tables import payments
    from tests.support.fakes import FakeRail
    from tests.support.payments import payment_body

    rail = FakeRail()
    hub.payments.rails["fake"] = rail
    r = await client.post("/v1/backoffice/payments", json=payment_body(),
                          headers={"Authorization": f"Bearer {backoffice_token}"})
    assert r.status_code == 201, r.text
    dispatcher = hub.dispatcher(batch=50)
    assert await dispatcher.run_once() == 1
    rail.settle("PAY-0001")
    clock.now = clock.now + timedelta(hours=2)
    assert await dispatcher.run_once() >= 1
    # The payment, its 4 events (instructed ... paid), the payment.notice and claim.status.
    assert _audit(settings, "chain").stdout.strip() == "chained 7 record(s)"
    out = tmp_path / "checkpoints.json"
    assert _audit(settings, "checkpoint", "--out", str(out)).returncode == 0
    good = _audit(settings, "verify")
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: 7 records, head seq 7 ")
    assert "records per table: messages 2, payment_events 4, payments 1" in good.stdout

    async with hub.engine.begin() as conn:
        pk = (await conn.execute(select(payments.c.pk)
                                 .where(payments.c.payment_id == "PAY-0001"))).scalar_one()
        await rewrite_record(conn, "payments", pk, {"amount_minor": 9_999_900})
    assert _audit(settings, "verify").returncode == 0  # consistent with itself
    bad = _audit(settings, "verify", "--checkpoint", str(out))
    assert bad.returncode == 1
    assert "history in seq 1..7 was rewritten" in bad.stderr, bad.stderr
    assert f"the unsigned records there: payments pk {pk} (payment PAY-0001)" in bad.stderr
