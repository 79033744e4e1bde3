"""Every event type Cloudcart publishes, and the JSON Schemas of docs/events/ rendered from
them.

Each domain declares the payloads of the events it publishes in its own `events` module
(`cloudcart/orders/events.py`, ...) as `EventSpec`s; this module gathers them (it sits at
the top, like `cloudcart.composition`, so it may import every domain, while core imports
none) and renders docs/events/<type>.schema.json for each, plus the envelope's
docs/events/event.schema.json:

    python -m cloudcart.event_catalogue --write   # rewrite the committed schemas
    python -m cloudcart.event_catalogue --check   # exit 1 when one differs from the code
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cloudcart.catalog.events import EVENT_SPECS as CATALOG_EVENTS
from cloudcart.core.events import (
    ENVELOPE_SCHEMA_FILE,
    EventSpec,
    event_json_schema,
    event_type_json_schema,
)
from cloudcart.customers.events import EVENT_SPECS as CUSTOMER_EVENTS
from cloudcart.insights.events import EVENT_SPECS as INSIGHTS_EVENTS
from cloudcart.inventory.events import EVENT_SPECS as INVENTORY_EVENTS
from cloudcart.ledger.events import EVENT_SPECS as LEDGER_EVENTS
from cloudcart.notifications.events import EVENT_SPECS as NOTIFICATION_EVENTS
from cloudcart.ops.events import EVENT_SPECS as OPS_EVENTS
from cloudcart.orders.events import EVENT_SPECS as ORDER_EVENTS

EVENTS_DOCS = Path(__file__).resolve().parent.parent / "docs" / "events"
"""Where the rendered schemas are committed."""


def _catalogue(*groups: Sequence[EventSpec]) -> dict[str, EventSpec]:
    found: dict[str, EventSpec] = {}
    for spec in (spec for group in groups for spec in group):
        if spec.type in found:
            raise ValueError(f"event type {spec.type!r} is declared twice")
        found[spec.type] = spec
    return dict(sorted(found.items()))


EVENT_SPECS: dict[str, EventSpec] = _catalogue(
    CATALOG_EVENTS,
    CUSTOMER_EVENTS,
    INSIGHTS_EVENTS,
    INVENTORY_EVENTS,
    LEDGER_EVENTS,
    NOTIFICATION_EVENTS,
    OPS_EVENTS,
    ORDER_EVENTS,
)
"""Every published event type (its name -> its spec), sorted by name."""


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """The text of every schema file of docs/events/ (file name -> text)."""
    files = {ENVELOPE_SCHEMA_FILE: _text(event_json_schema())}
    for spec in EVENT_SPECS.values():
        files[spec.schema_file] = _text(event_type_json_schema(spec))
    return files


def stale(directory: Path = EVENTS_DOCS) -> list[str]:
    """What in `directory` differs from `render()`: files missing or out of date, and schema
    files no spec renders."""
    rendered = render()
    problems = [
        f"{name} is out of date" if (directory / name).is_file() else f"{name} is missing"
        for name, text in rendered.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    problems += [
        f"{path.name} is not rendered by any event spec"
        for path in sorted(directory.glob("*.schema.json"))
        if path.name not in rendered
    ]
    return problems


def write(directory: Path = EVENTS_DOCS) -> list[str]:
    """Write every rendered schema that differs into `directory`; the names written."""
    written = []
    for name, text in render().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`--write` rewrites docs/events/*.schema.json; `--check` exits 1 when one is stale."""
    parser = argparse.ArgumentParser(prog="python -m cloudcart.event_catalogue")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the committed schemas")
    action.add_argument("--check", action="store_true", help="exit 1 when a schema is stale")
    parser.add_argument("--dir", type=Path, default=EVENTS_DOCS, help="the schemas' folder")
    args = parser.parse_args(argv)
    if args.write:
        for name in write(args.dir):
            print(f"wrote {args.dir / name}")
        orphans = [p for p in stale(args.dir) if p.endswith("not rendered by any event spec")]
        for problem in orphans:
            print(problem, file=sys.stderr)
        return 1 if orphans else 0
    problems = stale(args.dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("regenerate with `python -m cloudcart.event_catalogue --write`", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
