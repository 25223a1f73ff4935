"""The partner registry refuses bad configuration with a message naming the setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.protocol.partners import load_registry
from gateway.protocol.signing import generate_private_jwk, public_jwk
from gateway.runtime.bootstrap import write_dev_registry


def _jwks(tmp: Path, name: str, kid: str) -> str:
    path = tmp / f"{name}.jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(generate_private_jwk(kid))]}))
    return path.name


def test_dev_registry_loads_with_five_partners(tmp_path: Path) -> None:
    write_dev_registry(tmp_path / "partners.toml")
    reg = load_registry(tmp_path / "partners.toml")
    assert {p.id for p in reg} == {"ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB"}
    assert reg.keys.get("NP-FEB-dev-1").alg == "ES256"  # type: ignore[union-attr]


def test_a_new_px1_partner_needs_configuration_only(tmp_path: Path) -> None:
    name = _jwks(tmp_path, "PH", "PH-SSS-1")
    (tmp_path / "p.toml").write_text(
        f'[partners.PH-SSS]\nname = "Social Security System"\ncountry = "PH"\n'
        f'endpoint = "https://sss.example/px"\njwks_file = "{name}"\n'
        f'rate_limit_per_minute = 600\nallowed_types = ["claim.notify"]\n')
    reg = load_registry(tmp_path / "p.toml")
    partner = reg.get("PH-SSS")
    assert partner is not None and partner.adapter == "px1" and partner.allows("claim.notify")
    assert not partner.allows("death.notify")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[partners]\n", "has no [partners.<ID>] entries"),
        ("x = 1\n[partners.ID-XY]\n", "unknown top-level keys"),
        ('[partners.bad]\nname="x"\ncountry="ID"\njwks_file="k.json"\n'
         'endpoint="https://x"\n', "is not a party id"),
        ('[partners.ID-XY]\nname="x"\ncountry="ID"\njwks_file="k.json"\n',
         "a push partner needs an endpoint"),
        ('[partners.ID-XY]\nname="x"\ncountry="ID"\nmode="pull"\njwks_file="nope.json"\n',
         "does not exist"),
        ('[partners.ID-XY]\nname="x"\ncountry="ID"\nmode="pull"\njwks_file="k.json"\n'
         'colour="red"\n', "colour"),
        ('[partners.ID-XY]\nname="x"\ncountry="ID"\nmode="pull"\njwks_file="k.json"\n'
         'allowed_types=["claim.explode"]\n', "unknown message types"),
        ('[partners.ID-XY]\nname="x"\ncountry="ID"\nmode="pull"\njwks_file="k.json"\n'
         'adapter="smoke-signals"\n', "adapter 'smoke-signals' is unknown"),
        ("[partners.ID-XY\n", "not valid TOML"),
    ],
)
def test_bad_registries(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "k.json").write_text(json.dumps(
        {"keys": [public_jwk(generate_private_jwk("ID-X-1"))]}))
    (tmp_path / "p.toml").write_text(body)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_registry(tmp_path / "p.toml", frozenset({"px1"}))


def test_duplicate_kid_across_partners_is_refused(tmp_path: Path) -> None:
    jwk = public_jwk(generate_private_jwk("SAME-1"))
    (tmp_path / "k.json").write_text(json.dumps({"keys": [jwk]}))
    (tmp_path / "p.toml").write_text(
        '[partners.ID-AA]\nname="a"\ncountry="ID"\nmode="pull"\njwks_file="k.json"\n'
        '[partners.ID-BB]\nname="b"\ncountry="ID"\nmode="pull"\njwks_file="k.json"\n')
    with pytest.raises(ConfigError, match="already used by ID-AA"):
        load_registry(tmp_path / "p.toml")


def test_inline_jwks_with_two_keys_for_rotation(tmp_path: Path) -> None:
    old, new = (public_jwk(generate_private_jwk(k)) for k in ("ID-AA-1", "ID-AA-2"))
    (tmp_path / "p.toml").write_text(
        '[partners.ID-AA]\nname="a"\ncountry="ID"\nmode="pull"\n'
        f"jwks = {{ keys = [{_inline(old)}, {_inline(new)}] }}\n")
    reg = load_registry(tmp_path / "p.toml")
    assert {k.kid for k in reg.keys.of_party("ID-AA")} == {"ID-AA-1", "ID-AA-2"}


def _inline(jwk: dict[str, str]) -> str:
    return "{ " + ", ".join(f'{k} = "{v}"' for k, v in jwk.items()) + " }"
