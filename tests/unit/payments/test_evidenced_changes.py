"""A change of a payment's payout account or rail reference is named in its event's detail
(gateway.payments.service.with_changes): the chained event is what proves it."""

from __future__ import annotations

from typing import Any

from gateway.payments.service import EVIDENCED, with_changes

ROW: dict[str, Any] = {"provider": "MTWALLET", "account": "60123456789",
                       "account_name": "Siti Aminah", "rail_reference": None,
                       "state": "instructed"}


def test_nothing_evidenced_changed_leaves_the_detail_as_it_was() -> None:
    assert with_changes("first submit to fake", ROW, {**ROW, "state": "sending"}) == \
        "first submit to fake"
    assert with_changes(None, ROW, dict(ROW)) is None


def test_each_change_is_named_old_and_new_with_the_account_masked() -> None:
    new = {**ROW, "provider": "BOOST", "account": "60199991234", "account_name": "Siti A."}
    assert with_changes("payout account changed by beneficiary.update m-1 from ID-BPJSTK",
                        ROW, new) == (
        "payout account changed by beneficiary.update m-1 from ID-BPJSTK; "
        "provider: MTWALLET -> BOOST; account: *******6789 -> *******1234; "
        "account_name: Siti Aminah -> Siti A.")


def test_a_rail_reference_set_for_the_first_time_is_named() -> None:
    assert with_changes(None, ROW, {**ROW, "rail_reference": "FK000001"}) == \
        "rail_reference: (none) -> FK000001"


def test_every_evidenced_column_is_one_the_hub_may_update() -> None:
    from gateway.evidence.payments import CHANGING

    assert set(EVIDENCED) <= set(CHANGING)
