"""The log handler renders JSON lines with the bound ids, and only the ids it knows."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.observability.logs import bind_ids, clear_ids, configure_logging, held_logs


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


def test_held_logs_are_logged_at_the_end_or_dropped(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("gateway.test.held")
    caplog.set_level(logging.INFO)
    with held_logs("gateway.test.held"):
        log.info("kept back")
        assert caplog.messages == []  # held until the block ends
    assert caplog.messages == ["kept back"]
    caplog.clear()
    with held_logs("gateway.test.held") as held:
        log.info("undone")
        held.drop()
        log.info("after the drop, about undone work too")
    with pytest.raises(RuntimeError), held_logs("gateway.test.held"):
        log.info("the block failed")
        raise RuntimeError
    log.info("outside any block")
    assert caplog.messages == ["outside any block"]


@pytest.mark.anyio
async def test_held_logs_hold_only_their_own_task(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    log = logging.getLogger("gateway.test.held")
    caplog.set_level(logging.INFO)
    inside = asyncio.Event()

    async def other() -> None:
        await inside.wait()
        log.info("another task")

    task = asyncio.ensure_future(other())  # started before the block: its own context
    with held_logs("gateway.test.held"):
        log.info("this task")
        inside.set()
        await task
        assert caplog.messages == ["another task"]
    assert caplog.messages == ["another task", "this task"]
