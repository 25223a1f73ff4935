"""Tracing configuration: off by default, on by GATEWAY_OTEL_ENABLED, the collector from the
standard OTEL_* variables; an unusable value or missing packages is one clear ConfigError."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.observability.tracing import (
    DEFAULT_ENDPOINT,
    NO_TRACING,
    require_packages,
    start_tracing,
    tracing_config,
)

ON = Settings(otel_enabled=True)


def test_off_by_default_whatever_the_otel_variables_say() -> None:
    config = tracing_config(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not config.enabled
    assert start_tracing(config, "serve") is NO_TRACING


def test_the_switch_is_a_gateway_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_OTEL_ENABLED", "true")
    assert Settings().otel_enabled
    monkeypatch.setenv("GATEWAY_OTEL_ENABLED", "false")
    assert not Settings().otel_enabled


def test_on_with_no_variables_exports_to_the_local_collector() -> None:
    config = tracing_config(ON, {})
    assert config.enabled
    assert config.endpoint == DEFAULT_ENDPOINT == "http://localhost:4318/v1/traces"
    assert config.service_name == "px-gateway"


@pytest.mark.parametrize(("env", "endpoint"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
     "http://collector:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example/base/"},
     "https://otel.example/base/v1/traces"),
    # the signal's own variable is the full URL, used as it is, and wins over the base
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9999/traces",
      "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"}, "http://c:9999/traces"),
])
def test_the_standard_endpoint_variables(env: dict[str, str], endpoint: str) -> None:
    assert tracing_config(ON, env).endpoint == endpoint


def test_service_name_and_sdk_disabled() -> None:
    assert tracing_config(ON, {"OTEL_SERVICE_NAME": "px-gw-2"}).service_name == "px-gw-2"
    assert not tracing_config(ON, {"OTEL_SDK_DISABLED": "true"}).enabled


@pytest.mark.parametrize(("name", "value", "says"), [
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http:// or https://"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector", "http:// or https://"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "with a host"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999", "not a URL"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces?x=1", "plain URL"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c 4318", "plain URL"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"),
])
def test_an_unusable_value_names_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        tracing_config(ON, {name: value})
    message = str(caught.value)
    assert name in message and says in message and "\n" not in message


def test_a_bad_value_is_ignored_while_tracing_is_off() -> None:
    assert not tracing_config(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "nope"}).enabled


def test_missing_packages_are_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    require_packages()  # installed here (the test extra includes otel)
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ConfigError, match=r"px-gateway\[otel\]") as caught:
        start_tracing(tracing_config(ON, {}), "serve")
    assert "GATEWAY_OTEL_ENABLED" in str(caught.value)


def test_neither_sdk_nor_exporter_nor_instrumentation_is_imported_while_off() -> None:
    # (opentelemetry-api itself is FastAPI's dependency and imported by FastAPI)
    code = ("import sys; from gateway.app import create_app; from gateway.config import "
            "Settings; from gateway.observability.tracing import start_tracing, "
            "tracing_config; create_app(Settings(), tracing=start_tracing("
            "tracing_config(Settings(), {}), 'serve')); "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
            "'opentelemetry.exporter', 'opentelemetry.instrumentation'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"
