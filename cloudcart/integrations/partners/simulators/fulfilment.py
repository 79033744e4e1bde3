"""A fulfilment centre simulator: the partner API of docs/partners/api.md, on loopback.

It accepts fulfilment requests (one per Idempotency-Key, kept across restarts), then acts
like a warehouse: `shipment.accepted` right away, `shipment.shipped` after `ship_seconds`
and `shipment.delivered` after `deliver_seconds` (both counted from acceptance), each sent
to its queue as the partner would. Cancelling before the parcel left stops the rest.

Simulator controls (not part of the partner API): `POST /sim/outage {"seconds": N}` and
`PUT /sim/auto {"ship": false}` (hold shipping; pending shipments wait until it is back
on). The switch is not persisted: a new simulator starts with its `auto_ship` argument.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
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

DEFAULT_QUEUE = "fulfilment-updates"
SHIP_SECONDS_ENV = "SIM_FULFILMENT_SHIP_SECONDS"
DELIVER_SECONDS_ENV = "SIM_FULFILMENT_DELIVER_SECONDS"
DEFAULT_SHIP_SECONDS = 20.0
DEFAULT_DELIVER_SECONDS = 40.0
CARRIER = "SimPost"

ACCEPTED = "shipment.accepted"
SHIPPED = "shipment.shipped"
DELIVERED = "shipment.delivered"
_SHIPPING_KINDS = (SHIPPED, DELIVERED)

_ID_PATTERN = r"^[A-Za-z0-9._:~-]+$"


class LineIn(BaseModel):
    """Units of one SKU (the bounds of the `lines` of `shipment.shipped`)."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)


class FulfilmentRequestIn(BaseModel):
    """`POST /v1/fulfilment-requests`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    order_id: str = Field(min_length=1, max_length=128, pattern=_ID_PATTERN)
    lines: list[LineIn] = Field(min_length=1, max_length=100)
    shipping_address: dict[str, Any]
    shipping_method: str = Field(min_length=1, max_length=100)
    currency: str = Field(min_length=3, max_length=3)
    placed_at: str = Field(min_length=1, max_length=64)


class AutoBody(BaseModel):
    """`PUT /sim/auto`: ship (and deliver) automatically, or hold shipments."""

    model_config = ConfigDict(extra="forbid")

    ship: bool


def _seconds(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return float(value)
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as error:
        raise ValueError(f"{env} must be a number of seconds, not {raw!r}") from error


_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    lines TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_order ON requests (order_id, seq);
"""


class FulfilmentSimulator(PartnerSimulator):
    """The fulfilment centre. State lives in `<data_dir>/partners/fulfilment.sqlite3`.

    `ship_seconds` / `deliver_seconds` default to SIM_FULFILMENT_SHIP_SECONDS (20) and
    SIM_FULFILMENT_DELIVER_SECONDS (40); delivery never comes before shipping.
    """

    name = "fulfilment"
    _schema = _SCHEMA

    def __init__(
        self,
        data_dir: Path,
        send: Sender,
        queue: str = DEFAULT_QUEUE,
        *,
        api_key: str | None = None,
        ship_seconds: float | None = None,
        deliver_seconds: float | None = None,
        auto_ship: bool = True,
        port: int = 0,
    ) -> None:
        self.ship_seconds = max(0.0, _seconds(ship_seconds, SHIP_SECONDS_ENV, DEFAULT_SHIP_SECONDS))
        self.deliver_seconds = max(
            self.ship_seconds,
            _seconds(deliver_seconds, DELIVER_SECONDS_ENV, DEFAULT_DELIVER_SECONDS),
        )
        self._auto_ship = threading.Event()
        if auto_ship:
            self._auto_ship.set()
        super().__init__(
            Path(data_dir) / "partners" / "fulfilment.sqlite3",
            send,
            queue,
            api_key=api_key,
            port=port,
        )

    # --- the partner's behaviour -------------------------------------------------------

    def create_request(self, payload: dict[str, Any], idempotency_key: str) -> Stored:
        """Accept a fulfilment request once per key: 201 first, 200 with the same body for
        a repeat, a 422 Problem for the key reused with another body."""
        try:
            request = FulfilmentRequestIn.model_validate(payload)
        except ValidationError as error:
            raise Problem(422, "Unprocessable Content", validation_detail(error)) from error
        lines = [line.model_dump() for line in request.lines]

        def apply(db: sqlite3.Connection) -> Stored:
            request_id = new_id("fr")
            now = time.time()
            db.execute(
                "INSERT INTO requests (request_id, order_id, idempotency_key, lines, body, "
                "received_at, status) VALUES (?, ?, ?, ?, ?, ?, 'accepted')",
                (
                    request_id,
                    request.order_id,
                    idempotency_key,
                    json.dumps(lines),
                    json.dumps(payload),
                    now,
                ),
            )
            self._schedule(db, request_id, request.order_id, lines, now)
            return Stored(
                201, {"requestId": request_id, "orderId": request.order_id, "status": "accepted"}
            )

        stored = self._idempotent(
            idempotency_key,
            fingerprint({"operation": "create", "body": payload}),
            apply,
            replay_status=lambda status: 200 if status == 201 else status,
        )
        self._nudge()
        return stored

    def cancel_request(self, request_id: str, idempotency_key: str) -> Stored:
        """Cancel unless shipped: 200 `cancelled`, 409 with the status once shipped, a 404
        Problem for an unknown request."""

        def apply(db: sqlite3.Connection) -> Stored:
            row = db.execute(
                "SELECT status FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise Problem(404, "Not Found", f"no fulfilment request {request_id!r}")
            if row["status"] in ("shipped", "delivered"):
                return Stored(409, {"requestId": request_id, "status": row["status"]})
            db.execute(
                "UPDATE requests SET status = 'cancelled' WHERE request_id = ?", (request_id,)
            )
            # The acceptance, if still queued, happened before the cancellation: it stays.
            db.execute(
                "DELETE FROM outbox WHERE subject_id = ? AND kind IN (?, ?)",
                (request_id, *_SHIPPING_KINDS),
            )
            return Stored(200, {"requestId": request_id, "status": "cancelled"})

        return self._idempotent(
            idempotency_key, fingerprint({"operation": "cancel", "requestId": request_id}), apply
        )

    def requests(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """The requests received (for one order, or all), oldest first."""
        with self._write() as db:
            if order_id is None:
                rows = db.execute("SELECT * FROM requests ORDER BY seq").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM requests WHERE order_id = ? ORDER BY seq", (order_id,)
                ).fetchall()
        return [
            {
                "orderId": row["order_id"],
                "requestId": row["request_id"],
                "idempotencyKey": row["idempotency_key"],
                "lines": json.loads(row["lines"]),
                "receivedAt": iso_utc(row["received_at"]),
                "status": row["status"],
            }
            for row in rows
        ]

    @property
    def auto_ship(self) -> bool:
        """Whether shipments go out (and arrive) on their own."""
        return self._auto_ship.is_set()

    def set_auto_ship(self, ship: bool) -> None:
        """Turn automatic shipping on or off. While off, shipments and deliveries that come
        due wait; turned back on, they go out at once, stamped with that moment."""
        if not ship:
            self._auto_ship.clear()
            return
        with self._write() as db:
            now = time.time()
            overdue = db.execute(
                "SELECT seq, body FROM outbox WHERE kind IN (?, ?) AND due_at < ?",
                (*_SHIPPING_KINDS, now),
            ).fetchall()
            for row in overdue:
                body = json.loads(row["body"])
                body["occurredAt"] = iso_utc(now)
                # Equal due times: the outbox order (shipped before delivered) decides.
                db.execute(
                    "UPDATE outbox SET due_at = ?, body = ? WHERE seq = ?",
                    (now, json.dumps(body), row["seq"]),
                )
            self._auto_ship.set()
        self._nudge()

    # --- hooks -------------------------------------------------------------------------

    def _schedule(
        self,
        db: sqlite3.Connection,
        request_id: str,
        order_id: str,
        lines: list[dict[str, Any]],
        accepted_at: float,
    ) -> None:
        shipment_id = new_id("sh")
        tracking = f"SP{secrets.randbelow(10**10):010d}"

        def message(type_: str, at: float, **fields: Any) -> dict[str, Any]:
            return {
                "type": type_,
                "schemaVersion": 1,
                "eventId": new_id("evt"),
                "occurredAt": iso_utc(at),
                "orderId": order_id,
                "requestId": request_id,
                **fields,
            }

        shipped_at = accepted_at + self.ship_seconds
        delivered_at = accepted_at + self.deliver_seconds
        for kind, due, body in (
            (ACCEPTED, accepted_at, message(ACCEPTED, accepted_at)),
            (
                SHIPPED,
                shipped_at,
                message(
                    SHIPPED,
                    shipped_at,
                    shipmentId=shipment_id,
                    carrier=CARRIER,
                    trackingNumber=tracking,
                    trackingUrl=f"https://tracking.example.com/simpost/{tracking}",
                    lines=lines,
                ),
            ),
            (DELIVERED, delivered_at, message(DELIVERED, delivered_at, shipmentId=shipment_id)),
        ):
            self._enqueue(db, kind=kind, subject_id=request_id, due_at=due, body=body)

    def _held_kinds(self) -> tuple[str, ...]:
        return () if self._auto_ship.is_set() else _SHIPPING_KINDS

    def _on_sent(self, db: sqlite3.Connection, kind: str, subject_id: str) -> None:
        status = {SHIPPED: "shipped", DELIVERED: "delivered"}.get(kind)
        if status is not None:
            db.execute(
                "UPDATE requests SET status = ? WHERE request_id = ? AND status != 'cancelled'",
                (status, subject_id),
            )

    def _add_routes(self, app: FastAPI) -> None:
        @app.post("/v1/fulfilment-requests")
        def _create(
            payload: Annotated[dict[str, Any], Body()],
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> JSONResponse:
            stored = self.create_request(payload, required_key(idempotency_key))
            return JSONResponse(stored.body, status_code=stored.status)

        @app.post("/v1/fulfilment-requests/{request_id}/cancel")
        def _cancel(
            request_id: str,
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> JSONResponse:
            stored = self.cancel_request(request_id, required_key(idempotency_key))
            return JSONResponse(stored.body, status_code=stored.status)

        @app.get("/v1/fulfilment-requests")
        def _list(order_id: Annotated[str | None, Query(alias="orderId")] = None) -> JSONResponse:
            return JSONResponse({"items": self.requests(order_id)})

        @app.put("/sim/auto")
        def _auto(body: AutoBody) -> dict[str, Any]:
            self.set_auto_ship(body.ship)
            return {"ship": body.ship}
