"""Nepali citizenship certificates: NP-FEB's (district, number) spelling <-> canonical NP-CTZ.

A certificate number is unique only within its issuing district, so the canonical value is
``DISTRICT:NUMBER`` (``KATHMANDU:27-01-71-12345``). Partners write the district in mixed case,
with spaces, or in another common romanisation, and the number with ``-`` or ``/`` and
sometimes Devanagari digits. This module maps those spellings; it does not guess: a name that
is neither canonical nor a listed variant is refused, as are the pre-2015 names of districts
that were split (Nawalparasi, Rukum), because they cannot say which half issued the number.
"""

from __future__ import annotations

import re

from adapters.partners.common.digits import to_ascii_digits
from gateway.protocol.national_ids import NEPAL_DISTRICTS, normalise_national_id

__all__ = ["DISTRICT_VARIANTS", "canonical_district", "parse_ctz", "split_ctz"]

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
}
assert set(DISTRICT_VARIANTS.values()) <= NEPAL_DISTRICTS

_SEPARATORS = re.compile(r"[\s\-]+")
_NUMBER = re.compile(r"[0-9]+(?:[-/][0-9]+)*")


def canonical_district(name: str) -> str:
    """Return the canonical district spelling for a partner's district name."""
    key = _SEPARATORS.sub("_", name.strip()).upper()
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
