"""Masking of national ids and accounts, and who may unmask."""

from __future__ import annotations

from gateway.admin.actions import sanitise_error
from gateway.admin.masking import mask_account, mask_national_id, may_unmask


def test_national_ids_keep_scheme_and_last_two() -> None:
    assert mask_national_id("ID-NIK:3201145403910002") == "ID-NIK:**************02"
    assert mask_national_id("NP-CTZ:KATHMANDU:27-01-71-12345") == \
        "NP-CTZ:" + "*" * 22 + "45"
    assert mask_national_id("12") == "*2"
    assert mask_national_id("") == ""
    assert mask_national_id(None) is None


def test_accounts_keep_last_four_and_never_most_of_a_short_one() -> None:
    assert mask_account("60123456789") == "*******6789"
    assert mask_account("123456") == "***456"  # at most half is shown
    assert mask_account(None) is None


def test_only_acting_and_auditing_roles_unmask() -> None:
    assert not may_unmask(frozenset({"viewer"}))
    for role in ("operator", "approver", "auditor", "admin"):
        assert may_unmask(frozenset({"viewer", role}))


def test_errors_shown_to_operators_hide_long_numbers_and_control_characters() -> None:
    text = "HTTP 422: account 60123456789 refused\n\x1b[31m\u202eevil"
    assert sanitise_error(text) == "HTTP 422: account ########### refused [31m evil"
    assert len(sanitise_error("x" * 5000) or "") == 300
