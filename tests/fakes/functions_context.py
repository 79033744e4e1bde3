"""A stand-in for the `azure.functions.Context` the Functions worker passes to a function."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeFunctionContext:
    """The attributes the ASGI bridge reads from the worker's context object."""

    function_name: str = "http_app_func"
    function_directory: str = "."
    invocation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    thread_local_storage: Any = field(default_factory=threading.local)
    trace_context: Any = None
    retry_context: Any = None
