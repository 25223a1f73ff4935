"""Myanmar NRC numbers: partner spellings (ASCII or Burmese script) <-> canonical MM-NRC.

The same card is written ``12/OUKAMA(N)123456`` or ``၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆``. Digits and the card
type word map one to one, so they are translated by table. Township codes are looked up in
the NRC township table (``gateway.protocol.mm_townships``: every state's codes keyed by the
Burmese code, with one canonical ASCII spelling each, unique within the state): a Burmese code
becomes its canonical spelling; an ASCII spelling is accepted in any of the romanisations
partners use when it fits exactly one code of the state, and refused as ambiguous (naming the
candidates) or unknown otherwise. MYANMAR DIGIT ZERO typed for the letter WA (they look alike)
inside a township code is read as WA: digits never occur there.

Text must be Unicode; legacy Zawgyi-encoded input cannot be told apart reliably and is refused
by the same checks (unknown characters), never silently reinterpreted.
"""

from __future__ import annotations

import re
import unicodedata

from adapters.partners.common.digits import from_ascii_digits, to_ascii_digits
from gateway.protocol import mm_townships
from gateway.protocol.national_ids import normalise_national_id

__all__ = ["NRC_TYPES", "format_nrc_burmese", "parse_nrc"]

# Card type: Burmese word -> canonical letter.
NRC_TYPES: dict[str, str] = {
    "နိုင်": "N",  # citizen (naing)
    "ဧည့်": "E",  # associate citizen
    "ပြု": "P",  # naturalised citizen
    "သာသနာ": "T",  # religious
    "ယာယီ": "R",  # temporary: canonical R; published lists also romanise it Y (accepted)
    "စ": "S",  # provisional
}

_TYPE_TO_BURMESE = {letter: word for word, letter in NRC_TYPES.items()}

_SHAPE = re.compile(r"(?P<state>[^/]*)/(?P<township>[^(]*)\((?P<type>[^)]*)\)(?P<serial>.*)")
_CANONICAL = re.compile(
    r"(?P<state>[0-9]+)/(?P<township>[A-Z]+)\((?P<type>[A-Z])\)(?P<serial>[0-9]+)"
)

# Letters that look like digits and are typed in their place; named in the error so the
# partner can fix the record rather than us guessing.
_DIGIT_LOOKALIKES = {"\u101d": "\u1040", "\u101b": "\u1047"}  # wa ~ zero, ya ~ seven


def parse_nrc(text: str) -> str:
    """Return the canonical MM-NRC for an NRC in ASCII or Burmese script, or raise ValueError."""
    value = unicodedata.normalize("NFC", text.strip())
    # Keyboards emit the vowel signs of နိုင် in either order; both render the same.
    value = value.replace("\u102f\u102d", "\u102d\u102f")
    shape = _SHAPE.fullmatch(value)
    if shape is None:
        raise ValueError(
            f"NRC {text!r} must look like 12/OUKAMA(N)123456 or ၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆: "
            "state, '/', township code, type in brackets, serial (no spaces)"
        )
    state = _digits("state", shape["state"])
    serial = _digits("serial", shape["serial"])
    township = _township(int(state), shape["township"])
    nrc_type = _type(shape["type"])
    return normalise_national_id("MM-NRC", f"{state}/{township}({nrc_type}){serial}")


def format_nrc_burmese(canonical: str) -> str:
    """Return the Burmese-script spelling of a canonical MM-NRC."""
    normalise_national_id("MM-NRC", canonical)
    parts = _CANONICAL.fullmatch(canonical)
    assert parts is not None  # guaranteed by the validation above
    found = mm_townships.by_canonical(int(parts["state"]), parts["township"])
    assert found is not None  # the validation above checks the township table
    township = found.code
    return (
        f"{from_ascii_digits(parts['state'], 'myanmar')}/{township}"
        f"({_TYPE_TO_BURMESE[parts['type']]}){from_ascii_digits(parts['serial'], 'myanmar')}"
    )


def _digits(field: str, raw: str) -> str:
    for letter, digit in _DIGIT_LOOKALIKES.items():
        if letter in raw:
            raise ValueError(
                f"NRC {field} {raw!r} contains the Burmese letter {letter} (U+{ord(letter):04X}) "
                f"where a digit is expected; did the partner mean {digit} (U+{ord(digit):04X})?"
            )
    ascii_ = to_ascii_digits(raw)
    if not re.fullmatch(r"[0-9]+", ascii_):
        raise ValueError(f"NRC {field} {raw!r} must be ASCII or Burmese digits only")
    return ascii_


def _township(state: int, raw: str) -> str:
    if state not in mm_townships.states():
        raise ValueError(f"MM-NRC state {str(state)!r} must be a number 1-14")
    if raw.isascii():
        found = mm_townships.candidates(state, raw)
        if len(found) == 1:
            return found[0].canonical
        if not found:
            raise ValueError(
                f"NRC township code {raw!r} is not a township code of state {state} "
                f"({mm_townships.states()[state]}) in any known romanisation; "
                "send it in Burmese script if the romanisation differs"
            )
        which = "; ".join(f"{t.code} ({', '.join(t.names)})" for t in found)
        raise ValueError(
            f"NRC township code {raw!r} is ambiguous in state {state}: it may be {which}; "
            "send the township code in Burmese script"
        )
    code = raw.replace("\u1040", "\u101d")  # digit zero typed for the letter wa
    found_code = mm_townships.by_code(state, code)
    if found_code is None:
        raise ValueError(
            f"NRC township code {raw!r} in Burmese script is not a township code of state "
            f"{state} ({mm_townships.states()[state]}) in the NRC township table"
        )
    return found_code.canonical


# Romanisations of a type word that differ between published lists -> canonical letter.
_TYPE_ALIASES = {"Y": "R"}


def _type(raw: str) -> str:
    if raw.isascii():
        return _TYPE_ALIASES.get(raw.upper(), raw.upper())
    try:
        return NRC_TYPES[raw]
    except KeyError:
        raise ValueError(
            f"NRC type {raw!r} must be one of {', '.join(NRC_TYPES)} "
            "or N, E, P, T, R, S"
        ) from None
