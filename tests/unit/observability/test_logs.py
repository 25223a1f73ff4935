"""The log handler renders JSON lines with the bound ids, and only the ids it knows."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.observability.logs import bind_ids, clear_ids, configure_logging


def test_json_lines_carry_bound_ids_and_access_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        bind_ids(request_id="r-1", partner="ID-BPJSTK", payment_id=None)
        logging.getLogger("gateway.test").info("hello %s", "world",
                                               extra={"route": "/v1/messages", "body": "x"})
    finally:
        clear_ids()
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers
                                           if h.get_name() != "gateway"]
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "hello world" and line["level"] == "info"
    assert line["request_id"] == "r-1" and line["partner"] == "ID-BPJSTK"
    assert line["route"] == "/v1/messages"
    assert "body" not in line and "payment_id" not in line  # not an access field; None unbound


def test_only_known_id_fields_can_be_bound() -> None:
    with pytest.raises(ValueError, match="national_id"):
        bind_ids(national_id="3201145403910002")
