"""Structured logging: JSON lines on stdout; Azure Monitor only when configured."""

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from cloudcart.api import logging as cc_logging
from cloudcart.core.settings import Settings


class _RecordingMonitor:
    """Stands in for `azure.monitor.opentelemetry`: records configure_azure_monitor calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def configure_azure_monitor(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch) -> _RecordingMonitor:
    fake = _RecordingMonitor()
    module = types.ModuleType("azure.monitor.opentelemetry")
    module.configure_azure_monitor = fake.configure_azure_monitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", module)
    monkeypatch.setattr(cc_logging, "_monitor_configured", False)
    return fake


def test_json_lines_with_correlation_id_and_extra(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cc_logging.configure_logging(Settings(log_level="DEBUG"))
    token = cc_logging.correlation_id.set("cid-7")
    try:
        logging.getLogger("cloudcart.test").debug("order %s placed", "o1", extra={"orderId": "o1"})
    finally:
        cc_logging.correlation_id.reset(token)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    doc = json.loads(line)
    assert doc["level"] == "DEBUG"
    assert doc["logger"] == "cloudcart.test"
    assert doc["message"] == "order o1 placed"
    assert doc["correlationId"] == "cid-7"
    assert doc["orderId"] == "o1"
    assert "exception" not in doc


def test_configuring_twice_does_not_duplicate_lines(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cc_logging.configure_logging(Settings())
    cc_logging.configure_logging(Settings())
    logging.getLogger("cloudcart.test").warning("once")
    lines = [line for line in capsys.readouterr().out.splitlines() if '"once"' in line]
    assert len(lines) == 1


def test_no_azure_monitor_without_connection_string(
    root_logging: None, monitor: _RecordingMonitor
) -> None:
    cc_logging.configure_logging(Settings())
    assert monitor.calls == []


def test_azure_monitor_once_with_entra_credential(
    root_logging: None, monitor: _RecordingMonitor
) -> None:
    from azure.identity import DefaultAzureCredential

    conn = "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    settings = Settings(applicationinsights_connection_string=SecretStr(conn))
    cc_logging.configure_logging(settings)
    cc_logging.configure_logging(settings)
    assert len(monitor.calls) == 1
    assert monitor.calls[0]["connection_string"] == conn
    assert isinstance(monitor.calls[0]["credential"], DefaultAzureCredential)


AZURE_HOST = {"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_INSTANCE_ID": "0a1b2c"}
LOCAL_FUNC_START = {"FUNCTIONS_WORKER_RUNTIME": "python"}


class _Capture(logging.Handler):
    """Stands in for a handler the worker or OpenTelemetry put on the root logger."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_azure_functions_host_is_told_apart_from_local_runs() -> None:
    assert cc_logging.on_azure_functions_host(AZURE_HOST)
    assert cc_logging.on_azure_functions_host(
        {"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_SITE_NAME": "func-x"}
    )
    assert not cc_logging.on_azure_functions_host(LOCAL_FUNC_START)
    assert not cc_logging.on_azure_functions_host({})


def test_no_json_on_stdout_under_the_functions_host_on_azure(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cc_logging.configure_logging(Settings(), LOCAL_FUNC_START)
    cc_logging.configure_logging(Settings(), AZURE_HOST)  # replaces the local handler
    logging.getLogger("cloudcart.test").warning("not twice")
    assert '"not twice"' not in capsys.readouterr().out
    marked = [h for h in logging.getLogger().handlers if getattr(h, cc_logging._HANDLER_MARK, 0)]
    assert marked == []


def test_local_func_start_keeps_json_lines(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cc_logging.configure_logging(Settings(), LOCAL_FUNC_START)
    logging.getLogger("cloudcart.test").warning("local")
    assert '"local"' in capsys.readouterr().out


def test_records_keep_the_correlation_id_on_azure(root_logging: None) -> None:
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    cc_logging.configure_logging(Settings(), AZURE_HOST)
    cc_logging.configure_logging(Settings(), AZURE_HOST)
    assert sum(isinstance(f, cc_logging.CorrelationIdFilter) for f in capture.filters) == 1
    token = cc_logging.correlation_id.set("cid-9")
    try:
        logging.getLogger("cloudcart.test").warning("tagged")
    finally:
        cc_logging.correlation_id.reset(token)
    (record,) = [r for r in capture.records if r.getMessage() == "tagged"]
    assert getattr(record, "correlationId", None) == "cid-9"
