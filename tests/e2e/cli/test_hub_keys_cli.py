"""`gateway keys rotate|retire` on the hub's key file, as the operator runs them: a scheduled
key is published at once and signs only after the lead; a lead shorter than the configured one,
or retiring the only key that signs, is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from gateway.protocol.keys import load_signer, write_private_key
from tests.support.processes import run_cli

pytestmark = [pytest.mark.e2e]


def test_rotate_then_retire_the_hub_key(tmp_path: Path) -> None:
    key = tmp_path / "hub.jwk.json"
    write_private_key(key, "hub-1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_SIGNING_KEY_FILE": str(key), "GATEWAY_HUB_KEY_LEAD_MINUTES": "30"})

    short = run_cli(["keys", "rotate", "--kid", "hub-2", "--signs-in-minutes", "5"], env,
                    tmp_path)
    assert short.returncode != 0 and len(short.stderr.strip().splitlines()) == 1, short.stderr
    assert "shorter than GATEWAY_HUB_KEY_LEAD_MINUTES" in short.stderr

    before = int(time.time())  # the command stores whole seconds
    done = run_cli(["keys", "rotate", "--kid", "hub-2"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "added hub-2" in done.stdout and "signs from" in done.stdout
    [_, new] = json.loads(key.read_text())["keys"]
    assert new["kid"] == "hub-2" and new["nbf"] >= before + 30 * 60
    signer = load_signer(key, "MY-PERKESO")
    assert [k["kid"] for k in signer.jwks()["keys"]] == ["hub-1", "hub-2"]
    assert signer.kid == "hub-1"  # published, not signing yet

    early = run_cli(["keys", "retire", "--kid", "hub-1"], env, tmp_path)
    assert early.returncode != 0 and "leaves no key that signs now" in early.stderr
    assert len(early.stderr.strip().splitlines()) == 1, early.stderr
