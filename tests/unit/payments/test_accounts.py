"""The rails file's practice keys (gateway.payments.accounts): parsing, refusals, the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.composition import RAIL_KINDS
from gateway.errors import ConfigError
from gateway.payments.accounts import RailPractice
from gateway.payments.rails import load_rails, write_dev_rails

RAIL = """[rails.wallet]
adapter = "merchantrade"
base_url = "http://127.0.0.1:8701"
api_key_id = "k"
hmac_secret = "s"
callback_secret = "c"
"""


def rails(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "rails.toml"
    path.write_text(RAIL + extra, encoding="utf-8")
    return path


def test_practice_keys_are_read_and_never_reach_the_adapter(tmp_path: Path) -> None:
    cfg = load_rails(rails(tmp_path, 'account_kind = "mobile"\nwallet_country = "MY"\n'
                                     "minor_units = {IDR = 0, MMK = 0}\n"), RAIL_KINDS)
    p = cfg.practices["wallet"]
    assert (p.account_kind, p.wallet_country) == ("mobile", "MY")
    assert (p.digits("IDR"), p.digits("MMK"), p.digits("MYR")) == (0, 0, 2)
    assert "account_kind" not in cfg.raw["wallet"]  # the adapter's config forbids extra keys


def test_todays_files_keep_working(tmp_path: Path) -> None:
    cfg = load_rails(rails(tmp_path, ""), RAIL_KINDS)
    assert cfg.practices["wallet"] == RailPractice()
    cfg.practices["wallet"].check_account("MT-0042")  # any account the edge admits
    write_dev_rails(tmp_path / "dev.toml")
    dev = load_rails(tmp_path / "dev.toml", RAIL_KINDS)
    assert all(p.account_kind == "any" for p in dev.practices.values())


@pytest.mark.parametrize(("extra", "named"), [
    ('account_kind = "iban"\n', "rails.wallet.account_kind"),
    ('account_kind = "mobile"\n', "rails.wallet.wallet_country"),
    ('account_kind = "mobile"\nwallet_country = "XX"\n', "rails.wallet.wallet_country"),
    ('wallet_country = "MY"\n', "rails.wallet.wallet_country"),
    ('account_kind = "bank"\naccount_pattern = "[0-9"\n', "rails.wallet.account_pattern"),
    ('account_pattern = "[0-9]+"\n', "rails.wallet.account_pattern"),
    ("minor_units = -1\n", "rails.wallet.minor_units"),
    ("minor_units = true\n", "rails.wallet.minor_units"),
    ("minor_units = {XYZ = 0}\n", "rails.wallet.minor_units.XYZ"),
])
def test_a_bad_practice_key_is_one_line_naming_it(tmp_path: Path, extra: str,
                                                  named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as exc:
        load_rails(rails(tmp_path, extra), RAIL_KINDS)
    assert "\n" not in str(exc.value)


def mobile(country: str) -> RailPractice:
    return RailPractice.from_section({"account_kind": "mobile", "wallet_country": country})


@pytest.mark.parametrize(("country", "account"), [
    ("MY", "+60123456789"), ("MY", "0123456789"), ("ID", "+6281234567890"),
    ("BD", "01712345678"), ("NP", "+9779841234567"), ("PK", "+923001234567"),
    ("US", "+14155550100"),  # FIXED_LINE_OR_MOBILE: the plan cannot tell, so accepted
])
def test_mobiles_of_the_wallets_country_are_accepted(country: str, account: str) -> None:
    mobile(country).check_account(account)


@pytest.mark.parametrize(("country", "account", "why"), [
    ("MY", "+60388888888", "a landline"),
    ("MY", "+6281234567890", "a number of ID, not of MY"),
    ("MY", "FAIL-0001", "not a phone number"),  # letters are not read as a keypad's
    ("MY", "1800888888", "toll-free"),
    ("ID", "+62215551234", "a landline"),
])
def test_other_numbers_are_refused_saying_why(country: str, account: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as exc:
        mobile(country).check_account(account)
    assert account not in str(exc.value)


def test_a_bank_account_must_match_the_whole_pattern() -> None:
    bank = RailPractice.from_section({"account_kind": "bank"})
    bank.check_account("PK36SCBL0000001123456702")
    for bad in ("123-456", "1234", "pk36scbl0000001123456702"):
        with pytest.raises(ValueError, match=r"must match \[A-Z0-9\]\{5,34\}"):
            bank.check_account(bad)
    digits = RailPractice.from_section({"account_kind": "bank", "account_pattern": "[0-9]{13}"})
    digits.check_account("0123456789012")
    with pytest.raises(ValueError):
        digits.check_account("0123456789012X")  # fullmatch, not search


def test_settlement_keys_are_read_with_defaults_and_never_reach_the_adapter(
        tmp_path: Path) -> None:
    cfg = load_rails(rails(tmp_path, 'settlement_days = 2\ncutoff = "15:30"\n'
                                     'holiday_subdivision = "SGR"\n'), RAIL_KINDS)
    s = cfg.settlements["wallet"]
    assert (s.settlement_days, s.cutoff, s.holiday_subdivision) == (2, "15:30", "SGR")
    assert "cutoff" not in cfg.raw["wallet"]
    default = load_rails(rails(tmp_path, ""), RAIL_KINDS).settlements["wallet"]
    assert (default.settlement_days, default.cutoff, default.holiday_subdivision) == (
        1, "23:30", "KUL")


@pytest.mark.parametrize("extra", [
    "settlement_days = -1\n", "settlement_days = 1.5\n", 'cutoff = "25:00"\n',
    "cutoff = 1700\n", 'holiday_subdivision = "XX"\n',
])
def test_a_bad_settlement_key_is_one_line_naming_it(tmp_path: Path, extra: str) -> None:
    with pytest.raises(ConfigError, match=r"rails\.wallet\." + extra.split(" ")[0]) as exc:
        load_rails(rails(tmp_path, extra), RAIL_KINDS)
    assert "\n" not in str(exc.value)
