"""Digits in partner scripts (Myanmar, Devanagari, Bengali, Urdu/Arabic) to ASCII and back.

Only the ten digit code points of each script are touched; letters, vowel signs and everything
else pass through unchanged, so these are safe on identifiers but must not be used to "clean"
names or free text, which the gateway carries exactly as received.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DIGIT_SCRIPTS", "Script", "from_ascii_digits", "to_ascii_digits"]

Script = Literal["myanmar", "devanagari", "bengali", "urdu", "arabic"]

# The zero of each script's decimal block; every block is contiguous 0-9 (Unicode 15, Nd).
# Urdu is written with the Extended Arabic-Indic digits (U+06F0-06F9), Arabic with the
# Arabic-Indic ones (U+0660-0669); Pakistani documents and keyboards produce both.
DIGIT_SCRIPTS: dict[Script, int] = {
    "myanmar": 0x1040,
    "devanagari": 0x0966,
    "bengali": 0x09E6,
    "urdu": 0x06F0,
    "arabic": 0x0660,
}

_TO_ASCII: dict[int, str] = {
    zero + i: str(i) for zero in DIGIT_SCRIPTS.values() for i in range(10)
}
_FROM_ASCII: dict[Script, dict[int, str]] = {
    script: {ord(str(i)): chr(zero + i) for i in range(10)}
    for script, zero in DIGIT_SCRIPTS.items()
}


def to_ascii_digits(text: str) -> str:
    """Replace Myanmar, Devanagari, Bengali and Arabic-script digits with ASCII; leave all else."""
    return text.translate(_TO_ASCII)


def from_ascii_digits(text: str, script: Script) -> str:
    """Replace ASCII digits with the given script's digits; leave all else alone."""
    try:
        table = _FROM_ASCII[script]
    except KeyError:
        raise ValueError(
            f"unknown digit script {script!r} (one of {', '.join(DIGIT_SCRIPTS)})"
        ) from None
    return text.translate(table)
