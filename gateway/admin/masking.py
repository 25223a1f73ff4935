"""What of a person the admin API shows, and to whom.

Personal data here is a beneficiary's national id (``scheme:value``), a payout account and
the exact wire bytes of a message (which carry national ids and accounts). The rule:

- Every answer is masked by default, for every role: a national id keeps its scheme and last
  two characters (``ID-NIK:**************34``), an account its last four (``**********5678``).
  Wire bytes and canonical envelopes are withheld (``null`` with ``masked: true``).
- ``?unmasked=true`` shows them in full. Only ``operator``, ``approver``, ``auditor`` and
  ``admin`` may ask (a ``viewer`` gets 403 ``forbidden``, itself audited as denied), and every
  unmasked answer is recorded in the audit trail with ``unmasked: true``. Asking is an
  explicit act so that the trail shows each look at unmasked data, not every list page.
"""

from __future__ import annotations

__all__ = ["UNMASK_ROLES", "mask_account", "mask_national_id", "may_unmask"]

UNMASK_ROLES = frozenset({"operator", "approver", "auditor", "admin"})


def may_unmask(roles: frozenset[str]) -> bool:
    """May a caller with ``roles`` see unmasked personal data?"""
    return bool(roles & UNMASK_ROLES)


def _stars(value: str, keep: int) -> str:
    keep = min(keep, len(value) // 2)
    return "*" * (len(value) - keep) + (value[len(value) - keep:] if keep else "")


def mask_national_id(value: str | None) -> str | None:
    """``scheme:value`` with all but the last two characters of the value starred."""
    if value is None:
        return None
    scheme, sep, rest = value.partition(":")
    if not sep:
        return _stars(value, 2)
    return f"{scheme}:{_stars(rest, 2)}"


def mask_account(value: str | None) -> str | None:
    """An account or phone number with all but its last four characters starred."""
    return None if value is None else _stars(value, 4)
