"""Myanmar NRC township codes: keyed by (state, Burmese code), with a lossless ASCII spelling.

An NRC names its issuing township by a Burmese abbreviation, one consonant per syllable
(``ဥကမ`` for North Okkalapa). Romanising it letter by letter loses information: ယ and ရ are
both ``YA``, စ and ဆ both ``SA``, ဗ and ဘ both ``BA``, so in Shan State မရန (Mong Yai) and မယန
(Mong Yan) are both ``MAYANA``. The key is therefore the Burmese code within its state
(``data/mm_nrc_townships.json``, which names its source, date and corrections), and each
code gets one canonical ASCII spelling that is unique within its state:

- the plain spelling (``_LETTERS``' first column) when no other code of the state shares it;
- otherwise the *marked* spelling, where the letters that collide are written with their
  distinct romanisation (ရ ``RA``, ဆ ``HSA``, ဘ ``BHA``, ဓ ``DHA``, ဃ ``GHA``); so 13/မရန is
  ``MARANA`` and 13/မယန stays ``MAYANA``.

Partners romanise inconsistently (``OUKAMA``/``AUKAMA``/``UKAMA``, ``BAHANA``/``BHAHANA``,
``SADANA``/``SAHDANA``/``HSADANA``); :func:`candidates` maps any of the listed spellings of
each letter to the codes they may stand for, so a spelling that fits one code of the state is
taken and one that fits several is refused as ambiguous rather than guessed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Township", "by_canonical", "by_code", "candidates", "states", "townships"]

# Burmese letter -> accepted romanisations, the first one plain. Spellings from the source
# table and the second list the tests check against (see tests/unit/protocol/test_mm_townships).
_LETTERS: dict[str, tuple[str, ...]] = {
    "က": ("KA",), "ခ": ("KHA",), "ဂ": ("GA",), "ဃ": ("GA", "GHA"), "င": ("NGA",),
    "စ": ("SA",), "ဆ": ("SA", "HSA", "SAH"), "ဇ": ("ZA",), "ဈ": ("ZA", "ZHA"), "ည": ("NYA",),
    "ဋ": ("TA",), "ဌ": ("HTA",), "ဍ": ("DA",), "ဎ": ("DA",), "ဏ": ("NA",), "တ": ("TA",),
    "ထ": ("HTA",), "ဒ": ("DA",), "ဓ": ("DA", "DHA"), "န": ("NA",), "ပ": ("PA",),
    "ဖ": ("PHA", "HPA"), "ဗ": ("BA", "BHA"), "ဘ": ("BA", "BHA"), "မ": ("MA",), "ယ": ("YA",),
    "ရ": ("YA", "RA"), "လ": ("LA",), "ဝ": ("WA",), "သ": ("THA",), "ဟ": ("HA",), "ဠ": ("LA",),
    "အ": ("AH", "A"), "ဥ": ("OU", "AU", "U"),
}  # fmt: skip
# The distinct spelling of a letter whose plain one it shares with another letter.
_MARKS: dict[str, str] = {"ရ": "RA", "ဆ": "HSA", "ဘ": "BHA", "ဓ": "DHA", "ဃ": "GHA"}


@dataclass(frozen=True, slots=True)
class Township:
    """One NRC township code of a state: its Burmese key, ASCII spelling and townships."""

    state: int
    code: str  # Burmese, the key
    canonical: str  # ASCII, unique within the state
    names: tuple[str, ...]  # "ENGLISH (Burmese)" of each township the code stands for


@dataclass(frozen=True, slots=True)
class _State:
    name: str
    by_code: Mapping[str, Township]
    by_canonical: Mapping[str, Township]
    by_spelling: Mapping[str, tuple[Township, ...]]


def _plain(code: str) -> str:
    return "".join(_LETTERS[letter][0] for letter in code)


def _marked(code: str) -> str:
    return "".join(_MARKS.get(letter, _LETTERS[letter][0]) for letter in code)


def _spellings(code: str) -> set[str]:
    choices = [(*_LETTERS[letter], _MARKS.get(letter, _LETTERS[letter][0])) for letter in code]
    return {"".join(parts) for parts in itertools.product(*choices)}


def _build_state(number: int, raw: dict[str, Any]) -> _State:
    names: dict[str, list[str]] = {}
    for code, _source_spelling, name_en, name_mm in raw["townships"]:
        unknown = [letter for letter in code if letter not in _LETTERS]
        if unknown:
            raise ValueError(f"state {number} township code {code!r} has letters {unknown}")
        names.setdefault(code, []).append(f"{name_en} ({name_mm})")
    plain_counts: dict[str, int] = {}
    for code in names:
        plain_counts[_plain(code)] = plain_counts.get(_plain(code), 0) + 1
    by_code: dict[str, Township] = {}
    for code, township_names in names.items():
        canonical = _plain(code) if plain_counts[_plain(code)] == 1 else _marked(code)
        by_code[code] = Township(number, code, canonical, tuple(township_names))
    by_canonical = {t.canonical: t for t in by_code.values()}
    if len(by_canonical) != len(by_code):
        raise ValueError(f"state {number}: canonical township spellings are not unique")
    spelling: dict[str, list[Township]] = {}
    for township in by_code.values():
        for variant in _spellings(township.code):
            spelling.setdefault(variant, []).append(township)
    return _State(raw["name"], by_code, by_canonical,
                  {k: tuple(v) for k, v in spelling.items()})


@cache
def _table() -> dict[int, _State]:
    text = resources.files("gateway.protocol").joinpath("data", "mm_nrc_townships.json")
    data: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return {int(n): _build_state(int(n), raw) for n, raw in data["states"].items()}


def states() -> Mapping[int, str]:
    """Return the NRC state/region numbers (1-14) and their names."""
    return {n: s.name for n, s in _table().items()}


def townships(state: int) -> Mapping[str, Township]:
    """Return a state's township codes keyed by their Burmese code (empty if no such state)."""
    found = _table().get(state)
    return found.by_code if found else {}


def by_code(state: int, code: str) -> Township | None:
    """Return the township of a Burmese code in a state, or None."""
    return townships(state).get(code)


def by_canonical(state: int, spelling: str) -> Township | None:
    """Return the township whose canonical ASCII spelling in the state is ``spelling``."""
    found = _table().get(state)
    return found.by_canonical.get(spelling) if found else None


def candidates(state: int, spelling: str) -> tuple[Township, ...]:
    """Return the townships of a state that a partner's ASCII spelling may stand for."""
    found = _table().get(state)
    return found.by_spelling.get(spelling.upper(), ()) if found else ()
