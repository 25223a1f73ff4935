"""Partner date and time spellings <-> the gateway's dates and timezone-aware UTC datetimes.

Inside the gateway every instant is an aware UTC ``datetime``; offsets exist only at the edge.
Partners send local timestamps with an explicit offset (``2026-11-21T14:15:30+06:30``, Nepal's
``+05:45``): a timestamp without one is refused, because guessing the zone is how a payment
lands on the wrong day. Parsing is strict (ASCII digits, zero-padded fields, a ``T`` separator)
so that one wire value has exactly one meaning; ``datetime.fromisoformat`` alone would accept
several other spellings.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = [
    "format_at_offset",
    "format_ddmmyyyy",
    "local_date",
    "parse_ddmmyyyy",
    "parse_offset",
    "to_utc",
]

_DDMMYYYY = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")
_TIMESTAMP = re.compile(
    r"(?P<local>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?)"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)
# Offsets in use on Earth run from UTC-12:00 to UTC+14:00.
_MIN_OFFSET = timedelta(hours=-12)
_MAX_OFFSET = timedelta(hours=14)


def parse_ddmmyyyy(text: str, field: str = "date") -> date:
    """Parse a strict zero-padded ``DD/MM/YYYY`` date or raise ValueError naming the field."""
    match = _DDMMYYYY.fullmatch(text)
    if match is None:
        raise ValueError(f"{field} {text!r} must be DD/MM/YYYY, zero-padded ASCII digits")
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"{field} {text!r} is not a real date: {exc}") from exc


def format_ddmmyyyy(value: date) -> str:
    """Format a date as zero-padded ``DD/MM/YYYY``."""
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def parse_offset(text: str) -> timezone:
    """Parse a fixed UTC offset ``+HH:MM`` / ``-HH:MM`` into a timezone."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError(f"UTC offset {text!r} must be +HH:MM or -HH:MM, e.g. +05:45")
    sign, hours, minutes = match.groups()
    if int(minutes) > 59:
        raise ValueError(f"UTC offset {text!r} has minutes above 59")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if sign == "-":
        delta = -delta
    if not _MIN_OFFSET <= delta <= _MAX_OFFSET:
        raise ValueError(f"UTC offset {text!r} is outside -12:00..+14:00")
    return timezone(delta)


def to_utc(text: str, field: str = "timestamp") -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.ffffff]±HH:MM`` (or ``Z``) into an aware UTC datetime."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{field} {text!r} must be YYYY-MM-DDTHH:MM:SS[.ffffff] followed by Z or +HH:MM"
        )
    if match["offset"] is None:
        raise ValueError(
            f"{field} {text!r} has no UTC offset; naive local times are refused "
            "(append the partner's offset, e.g. +06:30)"
        )
    tz = UTC if match["offset"] == "Z" else parse_offset(match["offset"])
    try:
        local = datetime.fromisoformat(match["local"])
    except ValueError as exc:
        raise ValueError(f"{field} {text!r} is not a real date and time: {exc}") from exc
    return local.replace(tzinfo=tz).astimezone(UTC)


def format_at_offset(moment: datetime, offset: str) -> str:
    """Format an aware datetime as local ISO 8601 time at a fixed offset, e.g. ``+05:45``."""
    _require_aware(moment)
    return moment.astimezone(parse_offset(offset)).isoformat()


def local_date(moment: datetime, offset: str) -> date:
    """Return the calendar date of an aware datetime at a fixed offset."""
    _require_aware(moment)
    return moment.astimezone(parse_offset(offset)).date()


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime is naive; the gateway only handles timezone-aware datetimes")
