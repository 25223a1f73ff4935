"""The rails configuration file (``GATEWAY_RAILS_FILE``, TOML): which rails, where, secrets.

    [payouts]                      # optional: how the hub follows payouts
    poll_after_seconds = 30        # first status poll after a payout was accepted
    poll_max_seconds = 3600        # the longest wait between polls
    batch_size = 100               # payouts one handler call sends (one pain.001 per batch)

    [rails.merchantrade]           # the rail's name (payments say rail = "merchantrade")
    adapter = "merchantrade"       # the implementation in gateway.composition (default:
    base_url = "http://127.0.0.1:8701"   # the name); the rest is the adapter's typed config
    api_key_id = "px-dev"
    hmac_secret = "..."
    callback_secret = "..."
    account_kind = "mobile"        # the rail's practice (gateway.payments.accounts): which
    wallet_country = "MY"          # payout accounts it pays, and minor_units, the decimals
    minor_units = 0                # it pays in (default: the currency's ISO 4217 digits)
    settlement_days = 1            # reconciliation (gateway.reconciliation): a paid payout
    cutoff = "23:30"               # must be on the statement within T+N Malaysian business
    holiday_subdivision = "KUL"    # days; paid after the cut-off (Asia/Kuala_Lumpur) counts
                                   # from the next business day; the state whose holidays count

Secrets are read from this file only; it must not be world-readable in production.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import holidays
from pydantic import BaseModel, ValidationError

from gateway.config import read_toml
from gateway.errors import ConfigError
from gateway.money import Money
from gateway.payments.accounts import PRACTICE_KEYS, RailPractice
from gateway.ports.rail import RailAdapter
from gateway.reconciliation.schedule import SCHEDULE_KEYS
from gateway.secretfiles import write_private

__all__ = ["DEFAULT_MAX_AMOUNT", "SETTLEMENT_KEYS", "RailKind", "RailsConfig", "Settlement",
           "load_rails", "write_dev_rails"]

DEFAULT_MAX_AMOUNT: dict[str, Money] = {
    c: Money.parse(a, c) for c, a in {
        "MYR": "500000.00", "IDR": "1800000000.00", "MMK": "250000000.00",
        "NPR": "16000000.00", "PKR": "33000000.00", "BDT": "14000000.00"}.items()}


SETTLEMENT_KEYS = ("settlement_days", "cutoff", "holiday_subdivision")
_CUTOFF = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass(frozen=True, slots=True)
class Settlement:
    """When a rail's statement must show a paid payout (reconciliation's window).

    Defaults (a rail whose table names none): T+1 business days, a 23:30 cut-off in
    Asia/Kuala_Lumpur, the holidays of Kuala Lumpur (``KUL``): assumptions for PERKESO to set
    per rail, as its contracts say.
    """

    settlement_days: int = 1
    cutoff: str = "23:30"
    holiday_subdivision: str = "KUL"

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> Settlement:
        """Read the settlement keys of a ``[rails.<name>]`` table.

        Raises:
            ValueError: naming the key that is wrong.
        """
        default = cls()
        days = section.get("settlement_days", default.settlement_days)
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 30:
            raise ValueError("settlement_days: a whole number of business days, 0..30")
        cutoff = section.get("cutoff", default.cutoff)
        if not isinstance(cutoff, str) or not _CUTOFF.match(cutoff):
            raise ValueError('cutoff: "HH:MM" (24-hour, Asia/Kuala_Lumpur)')
        subdiv = section.get("holiday_subdivision", default.holiday_subdivision)
        try:
            if not isinstance(subdiv, str):
                raise NotImplementedError
            holidays.country_holidays("MY", subdiv=subdiv)
        except NotImplementedError:
            raise ValueError("holiday_subdivision: a Malaysian state code such as KUL, SGR "
                             "or PNG") from None
        return cls(days, cutoff, subdiv)


@dataclass
class RailsConfig:
    rails: dict[str, RailAdapter] = field(default_factory=dict)
    poll_after_seconds: float = 30.0
    poll_max_seconds: float = 3600.0
    batch_size: int = 100
    # How long a paid payout may still be returned, per rail ([payouts] return_window_days,
    # or return_window_days in a [rails.<name>] table), and how often it is asked meanwhile.
    return_window_days: float = 60.0
    return_windows: dict[str, float] = field(default_factory=dict)
    return_poll_seconds: float = 86400.0
    # The largest single payout per currency ([payouts.max_amount], decimal strings); an
    # instruction above it is refused. Defaults: about RM 500,000 in each currency (an
    # assumption to be set by PERKESO, domain.md: amounts belong in configuration).
    max_amount: dict[str, Money] = field(default_factory=lambda: dict(DEFAULT_MAX_AMOUNT))
    # Per rail: the accounts it pays and its decimals; a rail not named accepts any account
    # the edge admits and pays the currency's ISO 4217 digits.
    practices: dict[str, RailPractice] = field(default_factory=dict)
    # Per rail: its statement's settlement window (reconciliation); a rail not named has the
    # defaults of ``Settlement``.
    settlements: dict[str, Settlement] = field(default_factory=dict)
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)  # per rail, for simulators


@dataclass(frozen=True, slots=True)
class RailKind:
    """A rail implementation: its typed config and the adapter built from it."""

    config: type[BaseModel]
    build: Callable[[Any], RailAdapter]


def load_rails(path: Path | None, kinds: Mapping[str, RailKind]) -> RailsConfig:
    """Build every configured rail adapter from ``kinds``; an empty config if ``path`` is None.

    Raises:
        ConfigError: the file is missing, not TOML, or a rail's settings are invalid.
    """
    if path is None:
        return RailsConfig()
    data = read_toml(path, "GATEWAY_RAILS_FILE")
    cfg = RailsConfig()
    payouts = data.get("payouts", {})
    try:
        cfg.poll_after_seconds = float(payouts.get("poll_after_seconds", cfg.poll_after_seconds))
        cfg.poll_max_seconds = float(payouts.get("poll_max_seconds", cfg.poll_max_seconds))
        cfg.batch_size = int(payouts.get("batch_size", cfg.batch_size))
        cfg.return_window_days = float(payouts.get("return_window_days",
                                                   cfg.return_window_days))
        cfg.return_poll_seconds = float(payouts.get("return_poll_seconds",
                                                    cfg.return_poll_seconds))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [payouts]: {exc}") from None
    for currency, text in dict(payouts.get("max_amount", {})).items():
        try:
            cfg.max_amount[currency] = Money.parse(str(text), currency)
        except ValueError as exc:
            raise ConfigError(f"{path}: [payouts.max_amount].{currency}: {exc}") from None
    if cfg.return_window_days < 0 or cfg.return_poll_seconds <= 0:
        raise ConfigError(f"{path}: [payouts]: return_window_days must be >= 0 and "
                          "return_poll_seconds > 0")
    if cfg.poll_after_seconds <= 0 or not 1 <= cfg.batch_size <= 1000:
        raise ConfigError(f"{path}: [payouts]: poll_after_seconds must be > 0 and batch_size "
                          "1..1000")
    for name, section in data.get("rails", {}).items():
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: rails.{name} must be a table")
        section = dict(section)
        kind = section.pop("adapter", name)
        if "return_window_days" in section:
            window = section.pop("return_window_days")
            if not isinstance(window, int | float) or isinstance(window, bool) or window < 0:
                raise ConfigError(f"{path}: rails.{name}.return_window_days: a number >= 0")
            cfg.return_windows[name] = float(window)
        try:
            cfg.practices[name] = RailPractice.from_section(section)
        except ValueError as exc:
            raise ConfigError(f"{path}: rails.{name}.{exc}") from None
        try:
            cfg.settlements[name] = Settlement.from_section(section)
        except ValueError as exc:
            raise ConfigError(f"{path}: rails.{name}.{exc}") from None
        for key in (*PRACTICE_KEYS, *SETTLEMENT_KEYS, *SCHEDULE_KEYS):
            section.pop(key, None)
        entry = kinds.get(kind)
        if entry is None:
            raise ConfigError(f"{path}: rails.{name}: unknown adapter {kind!r} "
                              f"(one of {', '.join(sorted(kinds))})")
        try:
            config = entry.config.model_validate(section)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: rails.{name}.{where}: {first['msg']}") from None
        adapter = entry.build(config)
        cfg.rails[name] = adapter
        cfg.raw[name] = section
    return cfg


def write_dev_rails(path: Path, ports: dict[str, int] | None = None) -> None:
    """Write a development rails file pointing at the local simulators, with fresh secrets."""
    ports = ports or {"merchantrade": 8701, "iso20022": 8702}
    lines = ["# Development rails, generated by `gateway serve`: the local simulators",
             "# (`gateway simulate rail <name>` reads its secrets from this file).", "",
             "[payouts]", "poll_after_seconds = 30", ""]
    for name, port in ports.items():
        lines += [f"[rails.{name}]", f'adapter = "{name}"',
                  f'base_url = "http://127.0.0.1:{port}"', 'api_key_id = "px-dev"',
                  f'hmac_secret = "{secrets.token_urlsafe(24)}"',
                  f'callback_secret = "{secrets.token_urlsafe(24)}"', ""]
    write_private(path, "\n".join(lines))
