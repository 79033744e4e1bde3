"""The payloads of the events the customers area publishes: `customer.created`,
`customer.updated` and `customer.erased`.

Each payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers them, and docs/events/<type>.schema.json is rendered from it
(`python -m cloudcart.event_catalogue --write`). None of them carries a secret or a postal
address.

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from cloudcart.core.events import EventSpec

CustomerId = Annotated[
    str, Field(min_length=1, description="The customer (same as the envelope's `subject`).")
]
Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{1,14}$")]
Channel = Literal["email", "sms", "whatsapp", "push", "inApp"]
Kind = Literal["transactional", "marketing"]

CreatedField = Literal["name", "email", "phone", "locale", "addresses", "preferences"]
ChangedField = Literal[
    "name",
    "email",
    "phone",
    "locale",
    "timeZone",
    "emailVerified",
    "phoneVerified",
    "addresses",
    "preferences",
]


class AddressChange(TypedDict):
    """Which address changed and how (never the address itself)."""

    addressId: str
    change: Literal["added", "changed", "removed"]


PreferenceFlips = dict[Channel, dict[Kind, bool]]
"""The consent flags that flipped, per channel and kind."""


@with_config(ConfigDict(extra="allow"))
class CreatedChanges(TypedDict):
    """The values a new profile started with."""

    name: NotRequired[str | None]
    email: NotRequired[str | None]
    phone: NotRequired[Phone | None]
    locale: NotRequired[str | None]
    addresses: NotRequired[AddressChange]
    preferences: NotRequired[PreferenceFlips]


@with_config(ConfigDict(extra="allow"))
class ProfileChanges(TypedDict):
    """New values of the changed profile fields."""

    name: NotRequired[str | None]
    email: NotRequired[str | None]
    phone: NotRequired[Phone | None]
    locale: NotRequired[str | None]
    timeZone: NotRequired[
        Annotated[str | None, Field(description="IANA time zone name (Asia/Kolkata).")]
    ]
    emailVerified: NotRequired[
        Annotated[
            bool,
            Field(
                description="True when the customer proved the email with a code; false when "
                "a new email reset it."
            ),
        ]
    ]
    phoneVerified: NotRequired[
        Annotated[
            bool,
            Field(
                description="True when the customer proved the phone with a code; false when "
                "a new phone reset it."
            ),
        ]
    ]
    addresses: NotRequired[AddressChange]
    preferences: NotRequired[PreferenceFlips]


class CustomerCreated(TypedDict):
    """The payload (`data`) of `customer.created`."""

    customerId: CustomerId
    changedFields: Annotated[
        list[CreatedField],
        Field(description="What changed.", json_schema_extra={"uniqueItems": True}),
    ]
    changes: Annotated[
        CreatedChanges,
        Field(
            description="New values of the changed profile fields; for `addresses` "
            "`{addressId, change: added|changed|removed}` (never the address itself); for "
            "`preferences` the flags that flipped, per channel and kind."
        ),
    ]


class CustomerUpdated(TypedDict):
    """The payload (`data`) of `customer.updated`."""

    customerId: CustomerId
    changedFields: Annotated[
        list[ChangedField],
        Field(description="What changed.", json_schema_extra={"uniqueItems": True}),
    ]
    changes: Annotated[
        ProfileChanges,
        Field(
            description="New values of the changed profile fields (a new email or phone also "
            "resets its verified flag to false, listed as changed when it was true); for "
            "`addresses` `{addressId, change: added|changed|removed}` (never the address "
            "itself); for `preferences` the flags that flipped, per channel and kind."
        ),
    ]


@with_config(ConfigDict(extra="forbid"))
class CustomerErased(TypedDict):
    """The payload (`data`) of `customer.erased`: deliberately nothing but the id."""

    customerId: Annotated[
        str,
        Field(min_length=1, description="The erased customer (same as the envelope's `subject`)."),
    ]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "customer.created",
        1,
        "A customer profile was created from the token claims on the customer's first "
        "authenticated call (also after an erasure, when the customer comes back). The "
        "envelope's `subject` is the customer id. `changes` holds the name and email the "
        "profile started with.",
        CustomerCreated,
    ),
    EventSpec(
        "customer.updated",
        1,
        "A customer changed their profile, addresses or notification preferences "
        "(`/api/me/...`). The envelope's `subject` is the customer id. Carries no secrets and "
        "never a postal address; CRM applies `changes` to its copy.",
        CustomerUpdated,
    ),
    EventSpec(
        "customer.erased",
        1,
        "A customer's data was erased (`DELETE /api/me`). Every partner holding data about "
        "the customer must erase it too. Deliberately no personal data: only the customer id.",
        CustomerErased,
    ),
)
"""The event types the customers area publishes."""
