"""Strict JSON and the one text policy of the edge.

Every JSON body the hub reads (envelopes of every adapter, back-office bodies) goes through
``loads``, so the rules are the same wherever a byte enters:

- a key twice in one object is refused (the evidence would hold both, the hub one of them);
- nesting deeper than ``MAX_DEPTH`` arrays/objects is refused before any model sees it;
- integers beyond 64 bits and the non-JSON constants ``NaN``/``Infinity`` are refused;
- every string and key passes ``check_text``: NUL, the other C0 controls except tab, CR and LF,
  DEL, the C1 controls and the bidi embedding/override/isolate characters are refused, naming
  the field. (Names and ids refuse tab, CR and LF too: ``gateway.protocol.envelope.Text``.)

Refusals are ``InvalidMessageError``: ``malformed_json`` (400) for bytes that are not JSON,
``schema_violation`` (422) naming the field for JSON that breaks a rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.errors import InvalidMessageError

__all__ = ["MAX_DEPTH", "MAX_INT", "check_text", "forbidden_character", "loads"]

MAX_DEPTH = 32
MAX_INT = 2**63 - 1

# C0 except tab, LF, CR; DEL; C1; bidi embeddings, overrides and isolates (Trojan Source).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORBIDDEN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def forbidden_character(value: str, *, free_text: bool = True) -> str | None:
    """Return the first character the text policy refuses in ``value`` (as U+XXXX), or None."""
    found = (_FORBIDDEN if free_text else _FORBIDDEN_LINE).search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def check_text(value: str, field: str, *, free_text: bool = True) -> str:
    """Return ``value`` if the text policy allows it; else raise schema_violation naming it."""
    bad = forbidden_character(value, free_text=free_text)
    if bad is not None:
        raise InvalidMessageError("schema_violation",
                                  f"{field}: control or bidi-override character {bad} is refused")
    return value


class _Refusal(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refusal(f"key {key!r} appears twice in one object")
            seen.add(key)
    return out


def _int(text: str) -> int:
    if len(text) > 20 or not -MAX_INT - 1 <= (value := int(text)) <= MAX_INT:
        raise _Refusal(f"integer {text[:24]} is beyond 64 bits")
    return value


def _constant(name: str) -> Any:
    raise _Refusal(f"{name} is not JSON")


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: linear, fast
_BRACKET = re.compile(r"[\[\]{}]")
# An escape that may spell a refused character (tab, CR and LF escapes included: the exact
# walk then decides); raw C0 cannot occur inside valid JSON strings.
_ESCAPE = re.compile(r"\\u(?:00[01]|007|008|009|202|206)", re.IGNORECASE)


def _depth(text: str) -> int:
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # cannot be deeper: skip the scan
        return 0
    deepest = level = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def loads(raw: bytes | str, what: str = "the body") -> Any:
    """Parse ``raw`` under the strict rules above; the errors name ``what`` and the field."""
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError("malformed_json", f"{what} is not UTF-8: byte {exc.start} "
                                  "is invalid") from None
    # Measured on the text first, so the parser never recurses into a hostile depth.
    if _depth(text) > MAX_DEPTH:
        raise InvalidMessageError("schema_violation", f"{what}: nested deeper than "
                                  f"{MAX_DEPTH} levels")
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_int=_int,
                          parse_constant=_constant)
    except _Refusal as exc:
        raise InvalidMessageError("schema_violation", f"{what}: {exc.detail}") from None
    except RecursionError:  # pragma: no cover - _depth bounds it first
        raise InvalidMessageError("schema_violation", f"{what}: nested deeper than "
                                  f"{MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidMessageError("malformed_json", f"{what} is not JSON: {exc}") from None
    # The walk names the field; most bodies hold nothing it could refuse, which one scan of
    # the text shows far faster than visiting every string.
    if _FORBIDDEN.search(text) or _ESCAPE.search(text):
        _walk(data, what)
    return data


def _walk(data: Any, what: str) -> None:
    # Iterative, so the depth check itself cannot overflow the stack.
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            bad = forbidden_character(value)
            if bad is not None:
                raise InvalidMessageError("schema_violation", f"{path or what}: control or "
                                          f"bidi-override character {bad} is refused")
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidMessageError("schema_violation", f"{what}: nested deeper than "
                                          f"{MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                where = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    bad = forbidden_character(key, free_text=False)
                    if bad is not None:
                        raise InvalidMessageError(
                            "schema_violation", f"{path or what}: a key holds control or "
                            f"bidi-override character {bad}")
                stack.append((item, where, depth + 1))
