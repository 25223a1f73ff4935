"""The published bounds are the server's bounds (issue 9, item 11): an amount the OpenAPI
document and the JSON Schemas admit is one the hub accepts, and the other way round."""

from __future__ import annotations

import re

import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.money import Money


def _openapi_amount_pattern() -> str:
    spec = create_app(Settings(dispatch_in_serve=False)).openapi()
    pattern: str = spec["components"]["schemas"]["WireMoney"]["properties"]["amount"]["pattern"]
    return pattern


@pytest.mark.parametrize("amount", ["0.00", "1.50", "999999999999999.99", "1000000000000000.00",
                                    "99999999999999999999.00", "01.00"])
def test_openapi_amount_bound_equals_the_server_bound(amount: str) -> None:
    admitted = re.search(_openapi_amount_pattern(), amount) is not None
    try:
        Money.parse(amount, "MYR")
        accepted = True
    except ValueError:
        accepted = False
    assert admitted == accepted, (amount, admitted, accepted)
