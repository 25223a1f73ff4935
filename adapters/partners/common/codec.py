"""Walk a payload and translate its partner-native fields to canonical ones, or back.

Every partner adapter that is not PX/1 as is differs from the canonical envelope in the same
few places: field-name style, calendar dates, timestamps' offsets and national id spellings.
The message models fix where those fields are (a date is always under one of ``DATE_FIELDS``,
an id always under ``national_id``), so one walker per direction does the work and each
adapter supplies a ``Dialect``: small functions for its own spellings. Everything else (names,
free text, codes) is copied untouched, so Burmese, Devanagari and Bengali text survives.

Errors are ``ValueError`` naming the partner's field path, e.g.
``body.worker.dateOfBirth: date '31/02/1990' is not a real date``; adapters turn them into
``schema_violation`` problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from adapters.partners.common.dates import parse_offset

__all__ = [
    "DATETIME_FIELDS",
    "DATE_FIELDS",
    "Dialect",
    "camel_to_snake",
    "canonical_envelope",
    "local_timestamp",
    "snake_to_camel",
    "to_canonical",
    "to_wire",
    "utc_timestamp",
]

# Payload fields that hold a calendar date (YYYY-MM-DD canonically) or an instant.
DATE_FIELDS = frozenset(
    {"date_of_birth", "date", "certified_on", "confirmed_on", "died_on", "due_on"}
)
DATETIME_FIELDS = frozenset({"sent_at", "session_at", "paid_at", "received_at"})

_TS = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<frac>\.[0-9]{1,9})?(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})"
)


def _same(value: Any) -> Any:
    return value


def _same_key(name: str, path: str = "") -> str:
    return name


@dataclass(frozen=True)
class Dialect:
    """One partner's spellings; each function raises ValueError saying what is wrong."""

    offset: str  # the partner's local UTC offset, e.g. "+05:45"
    date_in: Callable[[str], str] = _same  # wire date -> YYYY-MM-DD
    date_out: Callable[[str], str] = _same  # YYYY-MM-DD -> wire date
    national_id_in: Callable[[dict[str, Any]], dict[str, Any]] = _same
    national_id_out: Callable[[dict[str, Any]], dict[str, Any]] = _same
    key_in: Callable[[str, str], str] = _same_key  # wire name, path -> canonical name
    key_out: Callable[[str], str] = field(default=lambda name: name)


def utc_timestamp(text: str) -> str:
    """Return an offset timestamp as canonical UTC ``...Z``, keeping its fraction digits."""
    match = _TS.fullmatch(text)
    if match is None:
        raise ValueError(
            f"timestamp {text!r} must be YYYY-MM-DDTHH:MM:SS[.fff] followed by Z or +HH:MM "
            "(a local time without its offset is refused)"
        )
    tz = UTC if match["offset"] == "Z" else parse_offset(match["offset"])
    try:
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}").replace(tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"timestamp {text!r} is not a real date and time: {exc}") from None
    utc = local.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (match["frac"] or "") + "Z"


def local_timestamp(text: str, offset: str) -> str:
    """Return a timestamp at the partner's local ``offset``, keeping its fraction digits."""
    match = _TS.fullmatch(text)
    if match is None:
        raise ValueError(f"timestamp {text!r} is not RFC 3339 with an offset")
    tz = UTC if match["offset"] == "Z" else parse_offset(match["offset"])
    moment = datetime.fromisoformat(f"{match['date']}T{match['time']}").replace(tzinfo=tz)
    target = parse_offset(offset)
    local = moment.astimezone(target)
    delta = target.utcoffset(None) or timedelta(0)
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return (local.strftime("%Y-%m-%dT%H:%M:%S") + (match["frac"] or "")
            + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}")


def _at(path: str, fn: Callable[[Any], Any], value: Any) -> Any:
    try:
        return fn(value)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def to_canonical(value: Any, dialect: Dialect, path: str) -> Any:
    """Translate a partner's payload (already parsed) into its canonical JSON value."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            try:
                name = dialect.key_in(key, where)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if name in out:
                raise ValueError(f"{where}: field {name} is given twice")
            if name == "national_id" and isinstance(item, dict):
                out[name] = _at(where, dialect.national_id_in, item)
            elif name in DATE_FIELDS and isinstance(item, str):
                out[name] = _at(where, dialect.date_in, item)
            elif name in DATETIME_FIELDS and isinstance(item, str):
                out[name] = _at(where, utc_timestamp, item)
            else:
                out[name] = to_canonical(item, dialect, where)
        return out
    if isinstance(value, list):
        return [to_canonical(v, dialect, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def canonical_envelope(header: dict[str, Any], payload: Any, dialect: Dialect, *,
                       header_path: str, payload_path: str) -> dict[str, Any]:
    """Finish an envelope from a partner header already mapped to canonical names: its
    ``sent_at`` in UTC and its payload in canonical names and spellings.

    Raises:
        ValueError: naming the partner's own field that is wrong.
    """
    env = dict(header)
    if isinstance(env.get("sent_at"), str):
        try:
            env["sent_at"] = utc_timestamp(env["sent_at"])
        except ValueError as exc:
            raise ValueError(f"{header_path}.sentAt: {exc}") from None
    env["payload"] = (to_canonical(payload, dialect, payload_path)
                      if isinstance(payload, dict) else payload)
    return env


def to_wire(value: Any, dialect: Dialect, path: str = "") -> Any:
    """Translate a canonical JSON value into the partner's spelling of it."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            name = dialect.key_out(key)
            if key == "national_id" and isinstance(item, dict):
                out[name] = _at(where, dialect.national_id_out, item)
            elif key in DATE_FIELDS and isinstance(item, str):
                out[name] = _at(where, dialect.date_out, item)
            elif key in DATETIME_FIELDS and isinstance(item, str):
                out[name] = _at(where, partial(local_timestamp, offset=dialect.offset), item)
            else:
                out[name] = to_wire(item, dialect, where)
        return out
    if isinstance(value, list):
        return [to_wire(v, dialect, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_to_camel(name: str) -> str:
    """``date_of_birth`` -> ``dateOfBirth``; ``content_b64`` -> ``contentB64``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_to_snake(name: str, path: str = "") -> str:
    """``dateOfBirth`` -> ``date_of_birth``; refuse names that are not in camelCase."""
    snake = _CAMEL_BOUNDARY.sub(r"_\1", name).lower()
    if snake_to_camel(snake) != name:
        raise ValueError(f"field name {name!r} is not camelCase (expected e.g. dateOfBirth)")
    return snake
