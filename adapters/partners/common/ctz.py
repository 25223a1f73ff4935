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
"""

from __future__ import annotations

import re

from adapters.partners.common.digits import to_ascii_digits
from gateway.protocol.national_ids import NEPAL_ISSUING_DISTRICTS, normalise_national_id

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

_SEPARATORS = re.compile(r"[\s\-(),]+")
_NUMBER = re.compile(r"[0-9]+(?:[-/][0-9]+)*")


def canonical_district(name: str) -> str:
    """Return the canonical district spelling for a partner's district name."""
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
