"""Myanmar NRC numbers: partner spellings (ASCII or Burmese script) <-> canonical MM-NRC.

The same card is written ``12/OUKAMA(N)123456`` or ``၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆``. Digits and the card
type word map one to one, so they are translated by table. Township codes do not: Burmese
letters are romanised syllable by syllable and several letters share a romanisation (ယ and ရ
are both ``YA``), so ASCII -> Burmese cannot be computed. Township codes are therefore a small,
explicit, one-to-one table (``TOWNSHIP_CODES``) and an unknown Burmese code is refused rather
than guessed; extend the table as MM-SSB confirms codes. The table is an assumption of this
gateway, not MM-SSB's published list.

Text must be Unicode; legacy Zawgyi-encoded input cannot be told apart reliably and is refused
by the same checks (unknown characters), never silently reinterpreted.
"""

from __future__ import annotations

import re
import unicodedata

from adapters.partners.common.digits import from_ascii_digits, to_ascii_digits
from gateway.protocol.national_ids import normalise_national_id

__all__ = ["NRC_TYPES", "TOWNSHIP_CODES", "format_nrc_burmese", "parse_nrc"]

# Card type: Burmese word -> canonical letter.
NRC_TYPES: dict[str, str] = {
    "နိုင်": "N",  # citizen (naing)
    "ဧည့်": "E",  # associate citizen
    "ပြု": "P",  # naturalised citizen
    "သာသနာ": "T",  # religious
    "ယာယီ": "R",  # temporary: canonical R; published lists also romanise it Y (accepted)
    "စ": "S",  # provisional
}

# Burmese township abbreviation -> canonical romanisation (Yangon Region, state 12, first).
TOWNSHIP_CODES: dict[str, str] = {
    "ဥကမ": "OUKAMA",  # North Okkalapa
    "ဥကတ": "OUKATA",  # South Okkalapa
    "ဗဟန": "BAHANA",  # Bahan
    "ကမရ": "KAMAYA",  # Kamayut
    "ဒဂန": "DAGANA",  # Dagon
    "တမန": "TAMANA",  # Tamwe
    "ရကန": "YAKANA",  # Yankin
    "သကတ": "THAKATA",  # Thaketa
    "လသန": "LATHANA",  # Latha
    "ပဇတ": "PAZATA",  # Pazundaung
}

_TYPE_TO_BURMESE = {letter: word for word, letter in NRC_TYPES.items()}
_TOWNSHIP_TO_BURMESE = {ascii_: burmese for burmese, ascii_ in TOWNSHIP_CODES.items()}
assert len(_TOWNSHIP_TO_BURMESE) == len(TOWNSHIP_CODES), "township table must be one-to-one"

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
    township = _township(shape["township"])
    nrc_type = _type(shape["type"])
    return normalise_national_id("MM-NRC", f"{state}/{township}({nrc_type}){serial}")


def format_nrc_burmese(canonical: str) -> str:
    """Return the Burmese-script spelling of a canonical MM-NRC."""
    normalise_national_id("MM-NRC", canonical)
    parts = _CANONICAL.fullmatch(canonical)
    assert parts is not None  # guaranteed by the validation above
    township = _TOWNSHIP_TO_BURMESE.get(parts["township"])
    if township is None:
        raise ValueError(
            f"NRC township code {parts['township']!r} has no known Burmese spelling; "
            "add it to TOWNSHIP_CODES once confirmed"
        )
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


def _township(raw: str) -> str:
    if raw.isascii():
        return raw.upper()
    try:
        return TOWNSHIP_CODES[raw]
    except KeyError:
        raise ValueError(
            f"NRC township code {raw!r} in Burmese script is not in the known table "
            f"({', '.join(TOWNSHIP_CODES)}); send it romanised (e.g. OUKAMA) or extend the table"
        ) from None


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
