"""Pakistani CNIC / NICOP numbers: the printed ``12345-1234567-1`` spelling <-> canonical PK-CNIC.

The dashes carry no information (5 digits of locality, 7 of family and serial, 1 of gender), so
the canonical form drops them. Only the printed dash layout or 13 plain digits are accepted:
dashes in other places are a typing error and are refused, not re-flowed. Digits may be Urdu
(Extended Arabic-Indic, U+06F0-06F9) or Arabic-Indic (U+0660-0669); they are read as ASCII.
"""

from __future__ import annotations

import re

from adapters.partners.common.digits import to_ascii_digits
from gateway.protocol.national_ids import normalise_national_id

__all__ = ["format_cnic_dashed", "parse_cnic"]

_DASHED = re.compile(r"([0-9]{5})-([0-9]{7})-([0-9])")
_PLAIN = re.compile(r"[0-9]{13}")


def parse_cnic(text: str) -> str:
    """Return the canonical 13-digit PK-CNIC for ``12345-1234567-1`` or 13 plain digits."""
    ascii_text = to_ascii_digits(text)
    dashed = _DASHED.fullmatch(ascii_text)
    if dashed is not None:
        value = "".join(dashed.groups())
    elif _PLAIN.fullmatch(ascii_text):
        value = ascii_text
    else:
        raise ValueError(
            f"CNIC {text!r} must be written 12345-1234567-1 or as 13 digits (ASCII or Urdu)"
        )
    return normalise_national_id("PK-CNIC", value)


def format_cnic_dashed(canonical: str) -> str:
    """Return the printed ``12345-1234567-1`` spelling of a canonical PK-CNIC."""
    normalise_national_id("PK-CNIC", canonical)
    return f"{canonical[:5]}-{canonical[5:12]}-{canonical[12]}"
