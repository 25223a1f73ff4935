"""Nepali citizenship certificates: NP-FEB's (district, number) spelling <-> canonical NP-CTZ.

A certificate number is unique only within its issuing district, so the canonical value is
``DISTRICT:NUMBER`` (``KATHMANDU:27-01-71-12345``). Partners write the district in mixed case,
with spaces, or in another common romanisation, and the number with ``-`` or ``/`` and
sometimes Devanagari digits. This module maps those spellings; it does not guess: a name that
is neither canonical nor a listed variant is refused. Certificates issued before the 2015 split
name Nawalparasi or Rukum: those stay their issuing district (``NAWALPARASI:...``), because the
number alone cannot say which half the holder lives in now. The official post-split names are
accepted in the forms the Government of Nepal uses and partners type: ``Nawalparasi (Bardaghat
Susta East)`` / ``(... West)``, ``Rukum (East)``, ``East Rukum``, ``Rukum Purba``/``Paschim``.

District names printed in Devanagari (``काठमाडौं``) come from the ``nepali`` package's district
list (opensource-nepal, the 77 districts with their Nepali names) plus the pre-2015 and split
forms below. Certificates spell the same name in several ways that Unicode does not unify
(anusvara or a half nasal: ``संखुवासभा``/``सङ्खुवासभा``; chandrabindu or anusvara; long or short
i/u; with or without virama; zero-width joiners), so names are compared on a folded key
(:func:`_devanagari_key`) that is unique for every district.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from nepali.locations import districts as nepali_districts

from adapters.partners.common.digits import to_ascii_digits
from gateway.protocol.national_ids import NEPAL_ISSUING_DISTRICTS, normalise_national_id

__all__ = ["DEVANAGARI_VARIANTS", "DISTRICT_VARIANTS", "canonical_district", "parse_ctz",
           "split_ctz"]

# Other romanisations seen on Nepali documents -> canonical spelling.
DISTRICT_VARIANTS: dict[str, str] = {
    "KABHREPALANCHOK": "KAVREPALANCHOK",
    "KAVRE": "KAVREPALANCHOK",
    "KABHRE": "KAVREPALANCHOK",
    "SINDHUPALCHOWK": "SINDHUPALCHOK",
    "TEHRATHUM": "TERHATHUM",
    "DHANUSA": "DHANUSHA",
    "KAPILBASTU": "KAPILVASTU",
    "TANAHU": "TANAHUN",
    "CHITAWAN": "CHITWAN",
    "BARDIA": "BARDIYA",
    "MAKAWANPUR": "MAKWANPUR",
    "UDAYPUR": "UDAYAPUR",
    "NAWALPUR": "NAWALPARASI_EAST",
    "PARASI": "NAWALPARASI_WEST",
    "RUKUM_PURBA": "RUKUM_EAST",
    "RUKUM_PASCHIM": "RUKUM_WEST",
    # Official names since the split (Nepal Gazette 2074 BS / 2017), with parentheses removed
    # by _SEPARATORS, and the East/West word orders seen on forms.
    "NAWALPARASI_BARDAGHAT_SUSTA_EAST": "NAWALPARASI_EAST",
    "NAWALPARASI_BARDAGHAT_SUSTA_PURBA": "NAWALPARASI_EAST",
    "NAWALPARASI_BARDAGHAT_SUSTA_WEST": "NAWALPARASI_WEST",
    "NAWALPARASI_BARDAGHAT_SUSTA_PASCHIM": "NAWALPARASI_WEST",
    "EAST_NAWALPARASI": "NAWALPARASI_EAST",
    "WEST_NAWALPARASI": "NAWALPARASI_WEST",
    "NAWALPARASI_PURBA": "NAWALPARASI_EAST",
    "NAWALPARASI_PASCHIM": "NAWALPARASI_WEST",
    "EAST_RUKUM": "RUKUM_EAST",
    "WEST_RUKUM": "RUKUM_WEST",
    "RUKUM_EAST_PART": "RUKUM_EAST",
    "RUKUM_WEST_PART": "RUKUM_WEST",
    "PURBI_RUKUM": "RUKUM_EAST",
    "RUKUM_PURBI": "RUKUM_EAST",
    "PASCHIM_RUKUM": "RUKUM_WEST",
    "PASCHIMI_RUKUM": "RUKUM_WEST",
    "RUKUM_PASCHIMI": "RUKUM_WEST",
}
assert set(DISTRICT_VARIANTS.values()) <= NEPAL_ISSUING_DISTRICTS

# Devanagari forms the district list does not carry: pre-2015 districts, the split halves in
# the word orders certificates use, and spellings seen in other official lists.
DEVANAGARI_VARIANTS: dict[str, str] = {
    "नवलपरासी": "NAWALPARASI",
    "रुकुम": "RUKUM",
    "नवलपुर": "NAWALPARASI_EAST",
    "परासी": "NAWALPARASI_WEST",
    "नवलपरासी (बर्दघाट सुस्ता पूर्व)": "NAWALPARASI_EAST",
    "नवलपरासी (बर्दघाट सुस्ता पश्चिम)": "NAWALPARASI_WEST",
    "पूर्वी नवलपरासी": "NAWALPARASI_EAST",
    "पश्चिमी नवलपरासी": "NAWALPARASI_WEST",
    "पूर्वी रुकुम": "RUKUM_EAST",
    "रुकुम (पूर्वी भाग)": "RUKUM_EAST",
    "पश्चिमी रुकुम": "RUKUM_WEST",
    "रुकुम (पश्चिम भाग)": "RUKUM_WEST",
    "डाङ": "DANG",
    "डांग": "DANG",
    "काठमाण्डौ": "KATHMANDU",
}

_SEPARATORS = re.compile(r"[\s\-(),]+")
_DEVANAGARI_FOLD = str.maketrans({
    "\u0901": "\u0902",  # chandrabindu -> anusvara
    "\u0940": "\u093f",  # long i -> short i
    "\u0942": "\u0941",  # long u -> short u
    "\u200c": None, "\u200d": None,  # zero-width (non-)joiner
})
# A nasal consonant before another consonant is written as anusvara just as often, with or
# without its virama (लम्जुङ, लमजुङ).
_HALF_NASAL = re.compile("[\u0919\u091e\u0923\u0928\u092e]\u094d?(?=[\u0915-\u0939])")
_NOT_LETTERS = re.compile(r"[\s\-(),.\u094d]+")


def _devanagari_key(name: str) -> str:
    folded = unicodedata.normalize("NFC", name).translate(_DEVANAGARI_FOLD)
    folded = _HALF_NASAL.sub("\u0902", folded)
    return _NOT_LETTERS.sub("", folded.replace("\u0919", "\u0902\u0917"))  # final nga = ंग


@cache
def _devanagari_districts() -> dict[str, str]:
    table: dict[str, str] = {}
    named = [(d.name_nepali, d.name) for d in nepali_districts]
    for devanagari, name in [*named, *DEVANAGARI_VARIANTS.items()]:
        key = _SEPARATORS.sub("_", name.strip()).strip("_").upper()
        canonical = DISTRICT_VARIANTS.get(key, key)
        previous = table.setdefault(_devanagari_key(devanagari), canonical)
        if previous != canonical:
            raise ValueError(f"Devanagari district {devanagari!r} folds onto {previous}")
    return table
_NUMBER = re.compile(r"[0-9]+(?:[-/][0-9]+)*")


def canonical_district(name: str) -> str:
    """Return the canonical district spelling for a partner's district name."""
    if not name.isascii():
        found = _devanagari_districts().get(_devanagari_key(name))
        if found is None:
            raise ValueError(
                f"NP-CTZ district {name!r} is not one of Nepal's 77 districts (or the pre-2015 "
                "नवलपरासी, रुकुम) as written in Devanagari"
            )
        return found
    key = _SEPARATORS.sub("_", name.strip()).strip("_").upper()
    key = DISTRICT_VARIANTS.get(key, key)
    # normalise_national_id owns the list and the helpful messages (split names, near misses).
    normalise_national_id("NP-CTZ", f"{key}:0")
    return key


def parse_ctz(district: str, number: str) -> str:
    """Return the canonical NP-CTZ for an issuing district and a certificate number."""
    ascii_number = to_ascii_digits(number.strip())
    if not _NUMBER.fullmatch(ascii_number):
        raise ValueError(
            f"citizenship certificate number {number!r} must be digit groups separated by "
            "single '-' or '/'"
        )
    return normalise_national_id(
        "NP-CTZ", f"{canonical_district(district)}:{ascii_number.replace('/', '-')}"
    )


def split_ctz(canonical: str) -> tuple[str, str]:
    """Return (district, number) of a canonical NP-CTZ."""
    normalise_national_id("NP-CTZ", canonical)
    district, _, number = canonical.partition(":")
    return district, number
