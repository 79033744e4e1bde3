"""A CRM simulator: the contacts API of docs/partners/api.md, on loopback.

The shop creates or replaces a customer's contact (`PUT /v1/contacts/{customerId}`), sets
its order figures (`PUT /v1/contacts/{customerId}/orders`) and erases it
(`DELETE /v1/contacts/{customerId}`); each Idempotency-Key is applied once, across restarts
too. Replacing a contact keeps its order figures; deleting it removes everything held
about the customer, and a late repeat of an earlier upsert (same key) answers its stored
result without bringing the contact back. It sends no messages.

Simulator controls (not part of the partner API): `POST /sim/outage {"seconds": N}` and
`POST /sim/latency {"seconds": N}`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Header, Response
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from cloudcart.integrations.partners.simulators.server import (
    PartnerSimulator,
    Problem,
    Stored,
    fingerprint,
    iso_utc,
    required_key,
    validation_detail,
)

CURRENCY_PATTERN = r"^[A-Z]{3}$"
_MAX_CUSTOMER_ID = 255
_UNUSED_QUEUE = "crm-sends-nothing"

_Model = TypeVar("_Model", bound=BaseModel)


def _send_nothing(queue: str, body: dict[str, Any], message_id: str) -> None:
    """The base class's sender; never called, as nothing here writes to the outbox."""


class MarketingIn(BaseModel):
    """Marketing consent per channel; every channel must be stated."""

    model_config = ConfigDict(extra="forbid")

    email: StrictBool
    sms: StrictBool
    whatsapp: StrictBool


class ContactIn(BaseModel):
    """`PUT /v1/contacts/{customerId}`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    customer_id: str = Field(min_length=1, max_length=_MAX_CUSTOMER_ID)
    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=32)
    marketing: MarketingIn
    attributes: dict[str, Any] = Field(default_factory=dict)


class OrderStatsIn(BaseModel):
    """`PUT /v1/contacts/{customerId}/orders`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    order_count: StrictInt = Field(ge=0)
    lifetime_value: StrictInt = Field(ge=0)
    currency: str | None = Field(None, pattern=CURRENCY_PATTERN)
    last_order_id: str | None = Field(None, min_length=1, max_length=200)
    last_order_at: AwareDatetime | None = None
    last_order_status: str | None = Field(None, min_length=1, max_length=50)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    customer_id TEXT PRIMARY KEY,
    email TEXT,
    name TEXT,
    phone TEXT,
    marketing TEXT NOT NULL,
    attributes TEXT NOT NULL,
    orders TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deletions (
    customer_id TEXT PRIMARY KEY,
    deleted_at REAL NOT NULL
);
"""


def _customer_id(value: str) -> str:
    if not 1 <= len(value) <= _MAX_CUSTOMER_ID:
        raise Problem(
            422, "Unprocessable Content", f"customerId must be 1-{_MAX_CUSTOMER_ID} characters"
        )
    return value


def _validated(model: type[_Model], payload: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise Problem(422, "Unprocessable Content", validation_detail(error)) from error


class CrmSimulator(PartnerSimulator):
    """The CRM. Contacts live in `<data_dir>/partners/crm.sqlite3`."""

    name = "crm"
    _schema = _SCHEMA

    def __init__(self, data_dir: Path, *, api_key: str | None = None, port: int = 0) -> None:
        super().__init__(
            Path(data_dir) / "partners" / "crm.sqlite3",
            _send_nothing,
            _UNUSED_QUEUE,
            api_key=api_key,
            port=port,
        )

    # --- the partner's behaviour -------------------------------------------------------

    def upsert_contact(
        self, customer_id: str, payload: dict[str, Any], idempotency_key: str
    ) -> Stored:
        """Create or replace a contact once per key (its order figures stay): 200
        `{"customerId", "updatedAt"}`, a repeat answers the same; a 422 Problem for an
        invalid body, a `customerId` unlike the path's or the key reused with another."""
        contact = _validated(ContactIn, payload)
        if contact.customer_id != _customer_id(customer_id):
            raise Problem(
                422, "Unprocessable Content", "customerId in the path and the body differ"
            )

        def apply(db: sqlite3.Connection) -> Stored:
            now = time.time()
            db.execute(
                "INSERT INTO contacts (customer_id, email, name, phone, marketing, attributes, "
                "orders, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?) "
                "ON CONFLICT (customer_id) DO UPDATE SET email = excluded.email, "
                "name = excluded.name, phone = excluded.phone, marketing = excluded.marketing, "
                "attributes = excluded.attributes, updated_at = excluded.updated_at",
                (
                    customer_id,
                    contact.email,
                    contact.name,
                    contact.phone,
                    json.dumps(contact.marketing.model_dump()),
                    json.dumps(contact.attributes),
                    now,
                ),
            )
            db.execute("DELETE FROM deletions WHERE customer_id = ?", (customer_id,))
            return Stored(200, {"customerId": customer_id, "updatedAt": iso_utc(now)})

        return self._idempotent(
            idempotency_key,
            fingerprint({"operation": "upsert", "customerId": customer_id, "body": payload}),
            apply,
        )

    def update_order_stats(
        self, customer_id: str, payload: dict[str, Any], idempotency_key: str
    ) -> Stored:
        """Set a contact's order figures once per key: 200 `{"customerId", "updatedAt"}`;
        a 404 Problem when there is no such contact (not stored under the key, so a retry
        after the contact arrived succeeds), 422 for an invalid body."""
        _customer_id(customer_id)
        stats = _validated(OrderStatsIn, payload)

        def apply(db: sqlite3.Connection) -> Stored:
            now = time.time()
            updated = db.execute(
                "UPDATE contacts SET orders = ?, updated_at = ? WHERE customer_id = ?",
                (json.dumps(stats.model_dump(mode="json", by_alias=True)), now, customer_id),
            )
            if updated.rowcount == 0:
                raise Problem(404, "Not Found", f"no contact {customer_id!r}")
            return Stored(200, {"customerId": customer_id, "updatedAt": iso_utc(now)})

        return self._idempotent(
            idempotency_key,
            fingerprint({"operation": "orders", "customerId": customer_id, "body": payload}),
            apply,
        )

    def delete_contact(self, customer_id: str, idempotency_key: str) -> Stored:
        """Erase a contact and its order figures: 204, also when it was gone already."""
        _customer_id(customer_id)

        def apply(db: sqlite3.Connection) -> Stored:
            db.execute("DELETE FROM contacts WHERE customer_id = ?", (customer_id,))
            db.execute(
                "INSERT INTO deletions (customer_id, deleted_at) VALUES (?, ?) "
                "ON CONFLICT (customer_id) DO NOTHING",
                (customer_id, time.time()),
            )
            return Stored(204, {})

        return self._idempotent(
            idempotency_key,
            fingerprint({"operation": "delete", "customerId": customer_id}),
            apply,
        )

    def contact(self, customer_id: str) -> dict[str, Any] | None:
        """The contact as `GET /v1/contacts/{customerId}` answers it, or None."""
        with self._write() as db:
            row = db.execute(
                "SELECT * FROM contacts WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        if row is None:
            return None
        return {
            "customerId": row["customer_id"],
            "email": row["email"],
            "name": row["name"],
            "phone": row["phone"],
            "marketing": json.loads(row["marketing"]),
            "attributes": json.loads(row["attributes"]),
            "orders": None if row["orders"] is None else json.loads(row["orders"]),
            "updatedAt": iso_utc(row["updated_at"]),
        }

    def deleted(self, customer_id: str) -> bool:
        """Whether the customer was erased and not sent again since."""
        with self._write() as db:
            row = db.execute(
                "SELECT 1 FROM deletions WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        return row is not None

    # --- hooks -------------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        @app.put("/v1/contacts/{customer_id}")
        def _upsert(
            customer_id: str,
            payload: Annotated[dict[str, Any], Body()],
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> JSONResponse:
            stored = self.upsert_contact(customer_id, payload, required_key(idempotency_key))
            return JSONResponse(stored.body, status_code=stored.status)

        @app.put("/v1/contacts/{customer_id}/orders")
        def _orders(
            customer_id: str,
            payload: Annotated[dict[str, Any], Body()],
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> JSONResponse:
            stored = self.update_order_stats(customer_id, payload, required_key(idempotency_key))
            return JSONResponse(stored.body, status_code=stored.status)

        @app.delete("/v1/contacts/{customer_id}")
        def _delete(
            customer_id: str,
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> Response:
            stored = self.delete_contact(customer_id, required_key(idempotency_key))
            return Response(status_code=stored.status)

        @app.get("/v1/contacts/{customer_id}")
        def _get(customer_id: str) -> JSONResponse:
            contact = self.contact(customer_id)
            if contact is None:
                raise Problem(404, "Not Found", f"no contact {customer_id!r}")
            return JSONResponse(contact)
