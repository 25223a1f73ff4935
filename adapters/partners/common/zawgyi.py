"""Refuse Zawgyi-encoded Myanmar text, naming the field: it is not Unicode and reads wrongly.

Much Myanmar text is still typed with the Zawgyi font encoding, which reuses Unicode's Myanmar
code points with other meanings, so a Zawgyi name is valid UTF-8 and would pass as a different
name. Google's ``myanmartools`` detector (the model Facebook and Google use) tells the two
apart. The gateway refuses rather than converts: no maintained converter is a dependency, and a
name silently rewritten is worse than a refusal the partner can fix at its source.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from myanmartools import ZawgyiDetector

__all__ = ["ZAWGYI_THRESHOLD", "refuse_zawgyi"]

# The detector's own recommended cut-off for "this is Zawgyi" (myanmartools README).
ZAWGYI_THRESHOLD = 0.95


@cache
def _detector() -> ZawgyiDetector:
    return ZawgyiDetector()


def refuse_zawgyi(value: Any, path: str) -> None:
    """Raise ValueError naming the first string under ``value`` that is Zawgyi-encoded."""
    if isinstance(value, dict):
        for key, item in value.items():
            refuse_zawgyi(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            refuse_zawgyi(item, f"{path}[{i}]")
    elif (isinstance(value, str) and any("\u1000" <= c <= "\u109f" for c in value)
          and _detector().get_zawgyi_probability(value) > ZAWGYI_THRESHOLD):
        raise ValueError(
            f"{path}: text is Zawgyi-encoded, not Unicode; refused (not converted): "
            "convert it to Unicode at the source and send it again"
        )
