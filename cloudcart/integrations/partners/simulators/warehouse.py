"""A warehouse management system (WMS) simulator: the partner API of docs/partners/api.md,
on loopback.

The shop tells it about stock moves (`POST /v1/stock-movements`, each Idempotency-Key
applied once, across restarts too) and reads its figures (`GET /v1/stock/{sku}`). Its own
figures per SKU are `onHand`, `reserved` and a `sequence` that grows with every change:

| kind | effect |
|------|--------|
| set, adjust | onHand := the move's `onHand` |
| reserve | reserved += quantity |
| release | reserved -= quantity (not below 0) |
| sale | onHand -= quantity, reserved -= quantity (not below 0) |
| return | onHand += quantity |

Simulator controls (not part of the partner API): `POST /sim/outage {"seconds": N}` and
`POST /sim/stock/{sku} {"onHand": N, "reason": "..."}`, a count at the warehouse: it sets
the figure, bumps the sequence and sends `stock.adjusted` to the queue.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from cloudcart.integrations.partners.simulators.server import (
    PartnerSimulator,
    Problem,
    Sender,
    Stored,
    fingerprint,
    iso_utc,
    new_id,
    required_key,
    validation_detail,
)

DEFAULT_QUEUE = "inventory-updates"
STOCK_ADJUSTED = "stock.adjusted"
_MAX_UNITS = 100_000_000


class StockMovementIn(BaseModel):
    """`POST /v1/stock-movements`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    kind: Literal["set", "reserve", "release", "sale", "return", "adjust"]
    quantity: int = Field(ge=0, le=_MAX_UNITS)
    reference: str = Field(min_length=1, max_length=200)
    occurred_at: datetime
    on_hand: int | None = Field(None, ge=0, le=_MAX_UNITS)

    @model_validator(mode="after")
    def _on_hand_for_absolute_moves(self) -> StockMovementIn:
        if self.kind in ("set", "adjust") and self.on_hand is None:
            raise ValueError(f"onHand is required for a {self.kind!r} move")
        return self


class StockCountIn(BaseModel):
    """`POST /sim/stock/{sku}`: a count at the warehouse."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    on_hand: int = Field(ge=0, le=_MAX_UNITS)
    reason: str = Field("cycle count", min_length=1, max_length=200)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    sequence INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS movements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT,
    sku TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    reference TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at REAL NOT NULL,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    sequence INTEGER NOT NULL
);
"""


def _figure(sku: str, on_hand: int, reserved: int, sequence: int) -> dict[str, Any]:
    return {"sku": sku, "onHand": on_hand, "reserved": reserved, "sequence": sequence}


class WarehouseSimulator(PartnerSimulator):
    """The WMS. State lives in `<data_dir>/partners/warehouse.sqlite3`."""

    name = "warehouse"
    _schema = _SCHEMA

    def __init__(
        self,
        data_dir: Path,
        send: Sender,
        queue: str = DEFAULT_QUEUE,
        *,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(
            Path(data_dir) / "partners" / "warehouse.sqlite3",
            send,
            queue,
            api_key=api_key,
            port=port,
        )

    # --- the partner's behaviour -------------------------------------------------------

    def record_move(self, payload: dict[str, Any], idempotency_key: str) -> Stored:
        """Apply a move once per key; 200 with the SKU's figures (a repeat answers the
        figures of the first time), a 422 Problem for the key reused with another move."""
        try:
            move = StockMovementIn.model_validate(payload)
        except ValidationError as error:
            raise Problem(422, "Unprocessable Content", validation_detail(error)) from error

        def apply(db: sqlite3.Connection) -> Stored:
            on_hand, reserved, sequence = self._current(db, move.sku)
            quantity = move.quantity
            if move.kind in ("set", "adjust"):
                assert move.on_hand is not None  # checked by the model
                on_hand = move.on_hand
            elif move.kind == "reserve":
                reserved += quantity
            elif move.kind == "release":
                reserved = max(0, reserved - quantity)
            elif move.kind == "sale":
                on_hand -= quantity
                reserved = max(0, reserved - quantity)
            else:  # return
                on_hand += quantity
            sequence += 1
            self._store(db, move.sku, on_hand, reserved, sequence)
            db.execute(
                "INSERT INTO movements (idempotency_key, sku, kind, quantity, reference, "
                "occurred_at, received_at, on_hand, reserved, sequence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    idempotency_key,
                    move.sku,
                    move.kind,
                    quantity,
                    move.reference,
                    move.occurred_at.isoformat(),
                    time.time(),
                    on_hand,
                    reserved,
                    sequence,
                ),
            )
            return Stored(200, _figure(move.sku, on_hand, reserved, sequence))

        return self._idempotent(
            idempotency_key, fingerprint({"operation": "move", "body": payload}), apply
        )

    def stock(self, sku: str) -> dict[str, Any] | None:
        """The SKU's figures, or None when the WMS has never heard of it."""
        with self._write() as db:
            row = db.execute(
                "SELECT on_hand, reserved, sequence FROM stock WHERE sku = ?", (sku,)
            ).fetchone()
        if row is None:
            return None
        return _figure(sku, row["on_hand"], row["reserved"], row["sequence"])

    def movements(self, sku: str | None = None) -> list[dict[str, Any]]:
        """Moves applied (for one SKU, or all), oldest first, with the figures after each."""
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM movements WHERE ? IS NULL OR sku = ? ORDER BY seq", (sku, sku)
            ).fetchall()
        return [
            {
                "idempotencyKey": row["idempotency_key"],
                "sku": row["sku"],
                "kind": row["kind"],
                "quantity": row["quantity"],
                "reference": row["reference"],
                "occurredAt": row["occurred_at"],
                **_figure(row["sku"], row["on_hand"], row["reserved"], row["sequence"]),
            }
            for row in rows
        ]

    def set_stock(self, sku: str, on_hand: int, reason: str = "cycle count") -> dict[str, Any]:
        """A count at the warehouse: set the figure, bump the sequence and send
        `stock.adjusted` (shortly after, from the outbox). Returns the new figures."""
        count = StockCountIn(on_hand=on_hand, reason=reason)
        with self._write() as db:
            _, reserved, sequence = self._current(db, sku)
            sequence += 1
            self._store(db, sku, count.on_hand, reserved, sequence)
            now = time.time()
            self._enqueue(
                db,
                kind=STOCK_ADJUSTED,
                subject_id=sku,
                due_at=now,
                body={
                    "type": STOCK_ADJUSTED,
                    "schemaVersion": 1,
                    "eventId": new_id("evt"),
                    "occurredAt": iso_utc(now),
                    "sku": sku,
                    "onHand": count.on_hand,
                    "sequence": sequence,
                    "reason": count.reason,
                },
            )
        self._nudge()
        return _figure(sku, count.on_hand, reserved, sequence)

    # --- plumbing ----------------------------------------------------------------------

    @staticmethod
    def _current(db: sqlite3.Connection, sku: str) -> tuple[int, int, int]:
        row = db.execute(
            "SELECT on_hand, reserved, sequence FROM stock WHERE sku = ?", (sku,)
        ).fetchone()
        if row is None:
            return 0, 0, 0
        return int(row["on_hand"]), int(row["reserved"]), int(row["sequence"])

    @staticmethod
    def _store(db: sqlite3.Connection, sku: str, on_hand: int, reserved: int, seq: int) -> None:
        db.execute(
            "INSERT INTO stock (sku, on_hand, reserved, sequence) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, "
            "reserved = excluded.reserved, sequence = excluded.sequence",
            (sku, on_hand, reserved, seq),
        )

    def _add_routes(self, app: FastAPI) -> None:
        @app.post("/v1/stock-movements")
        def _move(
            payload: Annotated[dict[str, Any], Body()],
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> JSONResponse:
            stored = self.record_move(payload, required_key(idempotency_key))
            return JSONResponse(stored.body, status_code=stored.status)

        @app.get("/v1/stock/{sku}")
        def _stock(sku: str) -> JSONResponse:
            figure = self.stock(sku)
            if figure is None:
                raise Problem(404, "Not Found", f"no stock figure for SKU {sku!r}")
            return JSONResponse(figure)

        @app.post("/sim/stock/{sku}")
        def _count(sku: str, body: StockCountIn) -> JSONResponse:
            if not 1 <= len(sku) <= 64:
                raise Problem(422, "Unprocessable Content", "the SKU must be 1-64 characters")
            return JSONResponse(self.set_stock(sku, body.on_hand, body.reason))
