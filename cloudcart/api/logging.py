"""Structured logs: one JSON object per line on stdout, tagged with the request's correlation id.

Application Insights (through OpenTelemetry) is switched on only when its connection string
is configured; the exporter and its SDKs are imported inside that branch because they cost
a noticeable share of a cold start.

On Azure, under the Functions host, there is no stdout copy: the host collects a worker's
stdout as log lines of its own, so every record would reach Application Insights a second
time. There the records go out through the handlers already on the root logger
(OpenTelemetry's, the worker's), which get the correlation id instead. `cloudcart serve`
and a local `func start` keep the JSON lines.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

correlation_id: ContextVar[str | None] = ContextVar("cloudcart_correlation_id", default=None)
"""The correlation id of the request being handled (None outside a request)."""

# Marks the handler this module installed, so configuring twice replaces it instead of
# printing every record twice.
_HANDLER_MARK = "_cloudcart_json_handler"
_monitor_lock = threading.Lock()
_monitor_configured = False

# Set by the Azure platform only (a local `func start` sets FUNCTIONS_WORKER_RUNTIME, from
# local.settings.json, but neither of these).
_AZURE_PLATFORM_VARIABLES = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME")

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "correlationId", "taskName"}
    # uvicorn's ANSI-coloured copy of its message: noise in a JSON line.
    | {"color_message"}
)


class CorrelationIdFilter(logging.Filter):
    """Copies the current correlation id onto every record as `correlationId`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag the record; never drops it."""
        if not hasattr(record, "correlationId"):
            record.correlationId = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, correlationId,
    exception (when there is one) and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlationId": getattr(record, "correlationId", None) or correlation_id.get(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                doc[key] = value
        return json.dumps(doc, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at emit time, so redirecting stdout after
    configuration (test capture, a worker swapping streams) still catches the logs."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record to the current stdout."""
        self.stream = sys.stdout
        super().emit(record)


def on_azure_functions_host(environ: Mapping[str, str] | None = None) -> bool:
    """True when running under the Functions host in Azure (not a local `func start`);
    `environ` defaults to the process environment."""
    env = os.environ if environ is None else environ
    return bool(env.get("FUNCTIONS_WORKER_RUNTIME")) and any(
        env.get(name) for name in _AZURE_PLATFORM_VARIABLES
    )


def configure_logging(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Send the root logger's records to stdout as JSON lines at `settings.log_level` (not on
    Azure under the Functions host, see the module docs), and to Application Insights when
    `settings.applicationinsights_connection_string` is set.

    Safe to call more than once (each app factory call does): the JSON handler is replaced,
    and Azure Monitor is configured once per process. `environ` defaults to the process
    environment.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    on_azure = on_azure_functions_host(environ)
    if not on_azure:
        handler = _StdoutHandler(sys.stdout)
        setattr(handler, _HANDLER_MARK, True)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(CorrelationIdFilter())
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())

    secret = settings.applicationinsights_connection_string
    if secret is not None and secret.get_secret_value():
        _configure_azure_monitor(secret.get_secret_value())
    if on_azure:
        # The exporters' handlers (added above or by the worker) then carry the id too.
        for other in root.handlers:
            if not any(isinstance(f, CorrelationIdFilter) for f in other.filters):
                other.addFilter(CorrelationIdFilter())


def _configure_azure_monitor(connection_string: str) -> None:
    global _monitor_configured
    with _monitor_lock:
        if _monitor_configured:
            return
        # Imported here: OpenTelemetry and the exporter add a lot to a cold start and are
        # only wanted when telemetry is configured.
        from azure.identity import DefaultAzureCredential
        from azure.monitor.opentelemetry import configure_azure_monitor

        # The credential makes ingestion use Entra auth, so local auth can stay disabled on
        # the Application Insights resource.
        configure_azure_monitor(
            connection_string=connection_string, credential=DefaultAzureCredential()
        )
        _monitor_configured = True
