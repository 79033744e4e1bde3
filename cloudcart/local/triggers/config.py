"""What the local trigger host reads from outside the app: host.json and app settings."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cloudcart.core.errors import CloudcartError
from cloudcart.core.settings import Settings

HOST_JSON = Path(__file__).resolve().parents[3] / "host.json"
"""The Functions app's host.json (repo root): the same file Azure reads."""

_EXPRESSION = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


class TriggerHostError(CloudcartError):
    """The trigger host cannot run the app as declared (a missing setting, an unsupported
    binding, a non-embedded broker, an unknown topic...)."""


# --- host.json ------------------------------------------------------------------------------


def parse_timespan(value: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it (`00:05:00`, `1.02:00:00`, `00:00:01.5`)."""
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a TimeSpan ([d.]hh:mm:ss[.fffffff])")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(6, "0")[:6]),
    )


@dataclass(frozen=True)
class HostConfig:
    """The host.json settings the local host honours (`extensions.serviceBus`).

    Defaults are the values Cloudcart's host.json sets (see docs/architecture.md,
    "Messaging"), used when a key is missing.
    """

    max_concurrent_calls: int = 16
    max_auto_lock_renewal_duration: timedelta = timedelta(minutes=5)
    prefetch_count: int = 0
    auto_complete_messages: bool = True

    def __post_init__(self) -> None:
        if self.max_concurrent_calls < 1:
            raise ValueError("maxConcurrentCalls must be at least 1")
        if self.prefetch_count < 0:
            raise ValueError("prefetchCount must not be negative")

    @classmethod
    def from_host_json(cls, path: Path = HOST_JSON) -> HostConfig:
        """Read `extensions.serviceBus` of a host.json file."""
        document = json.loads(path.read_text(encoding="utf-8"))
        section: Mapping[str, Any] = document.get("extensions", {}).get("serviceBus", {})
        defaults = cls()
        renewal = section.get("maxAutoLockRenewalDuration")
        return cls(
            max_concurrent_calls=int(
                section.get("maxConcurrentCalls", defaults.max_concurrent_calls)
            ),
            max_auto_lock_renewal_duration=(
                defaults.max_auto_lock_renewal_duration
                if renewal is None
                else parse_timespan(str(renewal))
            ),
            prefetch_count=int(section.get("prefetchCount", defaults.prefetch_count)),
            auto_complete_messages=bool(
                section.get("autoCompleteMessages", defaults.auto_complete_messages)
            ),
        )


# --- binding expressions --------------------------------------------------------------------


def _setting_text(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def resolve_app_setting(name: str, settings: Settings) -> str | None:
    """The value of an app setting: a Cloudcart setting by its environment variable name
    (case-insensitive, as on Azure), else the environment; None when neither has it."""
    by_env = {env.lower(): fld for fld, env in Settings.env_names().items()}
    fld = by_env.get(name.lower())
    if fld is not None:
        value = getattr(settings, fld)
        if value is not None:
            return _setting_text(value)
    if name in os.environ:
        return os.environ[name]
    for key, value in os.environ.items():
        if key.lower() == name.lower():
            return value
    return None


def resolve_binding_expressions(value: str, settings: Settings, *, where: str) -> str:
    """Replace every `%NAME%` in a binding value by its app setting.

    `where` names the function and field for the error. Raises TriggerHostError naming
    the missing setting.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        resolved = resolve_app_setting(name, settings)
        if resolved is None:
            raise TriggerHostError(
                f"{where}: binding expression %{name}% needs the app setting {name!r}, which "
                "is neither a Cloudcart setting with a value nor an environment variable"
            )
        return resolved

    return _EXPRESSION.sub(replace, value)
