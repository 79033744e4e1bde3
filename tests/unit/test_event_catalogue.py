"""cloudcart.event_catalogue: the schemas of docs/events/ rendered from payload TypedDicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import jsonschema_rs
import pytest
from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from cloudcart.core.events import EventSpec, Timestamp, event_type_json_schema
from cloudcart.event_catalogue import EVENT_SPECS, EVENTS_DOCS, main, render, stale


class _Part(TypedDict):
    """A part."""

    code: Annotated[str, Field(pattern=r"^[A-Z]+$")]


class _Built(TypedDict):
    """The payload of `widget.built`."""

    widgetId: Annotated[str, Field(min_length=1, description="The widget.")]
    colour: Literal["red", "blue"]
    parts: Annotated[list[_Part], Field(min_length=1)]
    labels: dict[Annotated[str, Field(pattern=r"^[a-z]+$")], str]
    builtAt: Timestamp
    note: NotRequired[str | None]


@with_config(ConfigDict(extra="forbid"))
class _Closed(TypedDict):
    widgetId: str


BUILT = EventSpec("widget.built", 2, "A widget was built.", _Built)


def _validator(schema: dict[str, Any]) -> Any:
    envelope = json.loads((EVENTS_DOCS / "event.schema.json").read_text(encoding="utf-8"))
    registry = jsonschema_rs.Registry([(envelope["$id"], envelope)])
    return jsonschema_rs.validator_for(schema, registry=registry, validate_formats=True)


def _event(data: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "type": "widget.built",
        "version": 2,
        "time": "2030-01-01T12:00:00Z",
        "subject": "w_1",
        "correlationId": None,
        "data": data,
        **envelope,
    }


GOOD: dict[str, Any] = {
    "widgetId": "w_1",
    "colour": "red",
    "parts": [{"code": "AB"}],
    "labels": {"size": "large"},
    "builtAt": "2030-01-01T12:00:00.000000Z",
}


def test_a_spec_renders_the_file_shape_of_docs_events() -> None:
    schema = event_type_json_schema(BUILT)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://cloudcart.dev/schemas/events/widget.built.schema.json"
    assert schema["title"] == "widget.built (version 2)"
    assert schema["description"] == "A widget was built."
    assert schema["allOf"] == [{"$ref": "event.schema.json"}]
    assert schema["properties"]["type"] == {"const": "widget.built"}
    assert schema["properties"]["version"] == {"const": 2}
    data = schema["properties"]["data"]
    assert data["additionalProperties"] is True
    assert data["required"] == ["widgetId", "colour", "parts", "labels", "builtAt"]
    # Nested shapes are hoisted to the file's $defs, where their refs resolve.
    assert set(schema["$defs"]) == {"_Part"}
    assert "title" not in data["properties"]["widgetId"]
    assert jsonschema_rs.meta.is_valid(schema)


def test_a_rendered_schema_holds_every_constraint_of_the_typed_dict() -> None:
    validator = _validator(event_type_json_schema(BUILT))
    assert validator.is_valid(_event(GOOD))
    assert validator.is_valid(_event({**GOOD, "note": None, "addedLater": 1}))
    broken = [
        {**GOOD, "widgetId": ""},
        {**GOOD, "colour": "green"},
        {**GOOD, "parts": []},
        {**GOOD, "parts": [{"code": "ab"}]},
        {**GOOD, "labels": {"Size": "large"}},  # a key off the pattern, not just unchecked
        {**GOOD, "labels": {"size": 1}},
        {**GOOD, "builtAt": "yesterday"},
        {**GOOD, "note": 5},
        {k: v for k, v in GOOD.items() if k != "parts"},
    ]
    for data in broken:
        assert not validator.is_valid(_event(data)), data
    assert not validator.is_valid(_event(GOOD, version=1))
    assert not validator.is_valid(_event(GOOD, type="widget.sold"))


def test_a_payload_may_forbid_members_it_does_not_declare() -> None:
    schema = event_type_json_schema(EventSpec("widget.closed", 1, "Closed.", _Closed))
    assert schema["properties"]["data"]["additionalProperties"] is False
    validator = _validator(schema)
    base = _event({"widgetId": "w_1"}, type="widget.closed", version=1)
    assert validator.is_valid(base)
    assert not validator.is_valid({**base, "data": {"widgetId": "w_1", "name": "x"}})


def test_rendering_is_deterministic() -> None:
    assert render() == render()
    assert list(EVENT_SPECS) == sorted(EVENT_SPECS)


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stale(EVENTS_DOCS) == []
    assert main(["--check"]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert "order.placed.schema.json is missing" in capsys.readouterr().err
    assert main(["--write", "--dir", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == set(render())
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "order.paid.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "order.lost.schema.json").write_text("{}\n", encoding="utf-8")
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "order.paid.schema.json is out of date" in err
    assert "order.lost.schema.json is not rendered by any event spec" in err
    assert main(["--write", "--dir", str(tmp_path)]) == 1  # the orphan is left to a person
    assert stale(tmp_path) == ["order.lost.schema.json is not rendered by any event spec"]
