"""What a function's trigger declares, read once, and the `azure.functions` objects the
host hands to user functions.

`read_trigger` turns one `Function` of `app.get_functions()` into a `TriggerBinding`: how to
call the user function (`FunctionPlan`) and its trigger's values with `%NAME%` expressions
resolved on demand. Each runner module turns that into its own plan, so every
misconfiguration is found when the host is built, before anything runs.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessage

from cloudcart.core.ports.messages import ReceivedMessage
from cloudcart.core.settings import Settings
from cloudcart.local.triggers import logger
from cloudcart.local.triggers.config import TriggerHostError, resolve_binding_expressions

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

SERVICE_BUS_TRIGGER = "serviceBusTrigger"
COSMOS_DB_TRIGGER = "cosmosDBTrigger"
TIMER_TRIGGER = "timerTrigger"
HTTP_TRIGGER = "httpTrigger"

RUNNABLE_TRIGGERS = (SERVICE_BUS_TRIGGER, COSMOS_DB_TRIGGER, TIMER_TRIGGER)
"""The trigger types the local host runs (HTTP is uvicorn's)."""


# --- functions objects ----------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def to_service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
    """The `azure.functions.servicebus.ServiceBusMessage` the Functions worker would build
    for a message, metadata included."""
    properties: dict[str, Any] = dict(message.application_properties)
    metadata: dict[str, meta.Datum] = {
        "MessageId": meta.Datum(message.message_id, "string"),
        "DeliveryCount": meta.Datum(message.delivery_count, "int"),
        "SequenceNumber": meta.Datum(message.sequence_number, "int"),
        "EnqueuedTimeUtc": meta.Datum(_iso(message.enqueued_time), "string"),
        "LockedUntil": meta.Datum(_iso(message.locked_until), "string"),
        "LockToken": meta.Datum(message.lock_token, "string"),
        "ApplicationProperties": meta.Datum(json.dumps(properties), "json"),
        "UserProperties": meta.Datum(json.dumps(properties), "json"),
    }
    optional = {
        "Subject": message.subject,
        "Label": message.subject,
        "CorrelationId": message.correlation_id,
        "ContentType": message.content_type,
        "SessionId": message.session_id,
        "ExpiresAtUtc": None if message.expires_at is None else _iso(message.expires_at),
    }
    for key, text in optional.items():
        if text is not None:
            metadata[key] = meta.Datum(text, "string")
    return ServiceBusMessage(
        body=message.body,
        trigger_metadata=metadata,
        application_properties=properties,
        user_properties=dict(properties),
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_count=message.delivery_count,
        enqueued_sequence_number=message.sequence_number,
        enqueued_time_utc=message.enqueued_time,
        expires_at_utc=message.expires_at,
        label=message.subject,
        subject=message.subject,
        locked_until=message.locked_until,
        lock_token=message.lock_token,
        message_id=message.message_id,
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        state=0,  # Active
        time_to_live=(
            None if message.expires_at is None else message.expires_at - message.enqueued_time
        ),
    )


class LocalContext(func.Context):
    """The `context` argument for functions that declare one."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        """A fresh id per invocation."""
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        """Storage local to the invocation's thread."""
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        """The function's name."""
        return self._function_name

    @property
    def function_directory(self) -> str:
        """The folder of the function's script."""
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        """No distributed trace context locally."""
        return None

    @property
    def retry_context(self) -> Any:
        """No retry policy context locally."""
        return None


# --- plans: what to run, resolved once at construction ----------------------------------------


@dataclass(frozen=True)
class FunctionPlan:
    """How to call one user function: the part every trigger kind shares."""

    name: str
    trigger_type: str
    arg_name: str
    call: Callable[..., Any]
    is_async: bool
    wants_context: bool
    directory: str


@dataclass(frozen=True)
class TriggerBinding:
    """A runnable function's trigger: its `FunctionPlan` and the trigger's binding values."""

    function: FunctionPlan
    values: Mapping[str, Any]
    settings: Settings

    def text(self, key: str, *aliases: str, required: bool = True) -> str | None:
        """The first of `key` and its `aliases` the binding sets, `%NAME%` expressions
        resolved; None when none is set and not `required`. Raises TriggerHostError."""
        name = self.function.name
        for candidate in (key, *aliases):
            value = self.values.get(candidate)
            if value is not None:
                return resolve_binding_expressions(
                    str(value), self.settings, where=f"function {name!r}, {candidate}"
                )
        if required:
            raise TriggerHostError(f"function {name!r}: its trigger has no {key!r}")
        return None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def read_trigger(function: Function, settings: Settings) -> TriggerBinding | None:
    """The trigger of a function the local host runs; None for HTTP functions (uvicorn
    serves them) and, with a warning, for functions without a trigger or with a trigger
    type the host does not run. Raises TriggerHostError for what it cannot serve."""
    trigger = function.get_trigger()
    name = function.get_function_name() or function.get_user_function().__name__
    if trigger is None:
        logger.warning("function %s has no trigger; skipped", name)
        return None
    values: dict[str, Any] = {k: _plain(v) for k, v in trigger.get_dict_repr().items()}
    kind = str(values.get("type"))
    if kind == HTTP_TRIGGER:
        return None
    if kind not in RUNNABLE_TRIGGERS:
        logger.warning(
            "function %s: the local trigger host does not run %s triggers; skipped",
            name,
            kind,
            extra={"function": name, "trigger": kind},
        )
        return None
    others = [
        str(_plain(b.get_dict_repr().get("type")))
        for b in function.get_bindings()
        if b is not trigger
    ]
    if others:
        raise TriggerHostError(
            f"function {name!r}: the local trigger host passes only the trigger (and "
            f"`context`); it cannot serve the extra bindings {others}"
        )
    user_function = function.get_user_function()
    parameters = inspect.signature(user_function).parameters
    arg_name = str(values["name"])
    if arg_name not in parameters:
        raise TriggerHostError(f"function {name!r} has no parameter {arg_name!r}")
    plan = FunctionPlan(
        name=name,
        trigger_type=kind,
        arg_name=arg_name,
        call=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        wants_context="context" in parameters,
        directory=str(Path(function.function_script_file or ".").parent),
    )
    return TriggerBinding(plan, values, settings)
