"""Request and response bodies of the cart, checkout and order APIs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

MAX_QUANTITY = 99


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def exactly_one_of(*fields: tuple[str, str]) -> dict[str, Any]:
    """JSON Schema saying exactly one of these `(wire name, JSON type)` fields is given and
    not null, as the model's validator requires (a null one counts as left out)."""
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"type": type_}}} for name, type_ in fields
        ]
    }


class CartItemIn(_Body):
    """Add units of a SKU to the cart."""

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class CartQuantityIn(_Body):
    """Set the quantity of a cart line."""

    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class Address(_Body):
    """A shipping address."""

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code.")
    phone: str | None = Field(None, max_length=40)


class CheckoutIn(_Body):
    """Place the caller's cart as an order. Exactly one of `shippingAddress`/`addressId`."""

    model_config = ConfigDict(
        json_schema_extra=exactly_one_of(("shippingAddress", "object"), ("addressId", "string"))
    )

    shipping_address: Address | None = None
    address_id: str | None = Field(None, min_length=1, max_length=100)
    shipping_method: str = Field("standard", min_length=1, max_length=40)

    @model_validator(mode="after")
    def _one_address(self) -> CheckoutIn:
        if (self.shipping_address is None) == (self.address_id is None):
            raise ValueError("give exactly one of shippingAddress and addressId")
        return self


class LineQuantity(_Body):
    """Units of one order line."""

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class ReturnIn(_Body):
    """Return lines of a delivered order."""

    lines: list[LineQuantity] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)


class RefundIn(_Body):
    """Refund by lines or by an amount (minor units), not both."""

    model_config = ConfigDict(
        json_schema_extra=exactly_one_of(("lines", "array"), ("amount", "integer"))
    )

    lines: list[LineQuantity] | None = Field(None, min_length=1, max_length=100)
    amount: int | None = Field(None, ge=1)
    reason: str = Field("requested_by_admin", min_length=1, max_length=500)

    @model_validator(mode="after")
    def _lines_or_amount(self) -> RefundIn:
        if (self.lines is None) == (self.amount is None):
            raise ValueError("give exactly one of lines and amount")
        return self


class StatusIn(_Body):
    """An admin status change."""

    status: Literal["fulfilling", "shipped", "delivered", "on_hold", "returned"]


class ReviewIn(_Body):
    """An admin's decision on an order held for review."""

    decision: Literal["approve", "reject"] = Field(
        description="`approve` releases the order to fulfilment (or to its open payment); "
        "`reject` cancels it, refunding or voiding its payment."
    )


class CancelIn(_Body):
    """Why the order is cancelled (optional)."""

    reason: str = Field("requested_by_customer", min_length=1, max_length=500)


JSONObject = dict[str, Any]
