"""The exact shapes of a customer's stored documents (the `customers` container).

Every document of a customer lives in their partition of the `customers` container
(partition key `customerId`, see `cloudcart.core.documents.registry`), each named by its
`kind`:

| id | kind | type |
|----|------|------|
| `profile` | `profile` | `CustomerDocument` |
| `preferences` | `preferences` | `PreferencesDocument` |
| `cns_...` | `consent` | `ConsentDocument` (append-only) |
| `address-book` | `address-book` | `AddressBookDocument` |
| `addr_...` | `address` | `AddressDocument` |
| `erasure` | `erasure` | `ErasureDocument` (see `cloudcart.customers.privacy`) |

`customer.*` events wait in the same partition as outbox documents, which are
`cloudcart.core.outbox`'s and not described here.

These are `TypedDict`s, so reading or writing a document costs nothing at run time: the
service builds plain dicts and reads cast them. Each forbids unknown members when pydantic
validates it (`TypeAdapter(CustomerDocument)`), which
tests/unit/test_customer_document_types.py does for every document the real flows store.
Members marked `NotRequired` are missing from documents stored before they existed.
"""

# No `from __future__ import annotations`: evaluated annotations keep each TypedDict's
# `__required_keys__` / `__optional_keys__` right at runtime.
from typing import Annotated, Any, Literal, NotRequired, cast, get_args

from pydantic import ConfigDict, Discriminator, Field, with_config

# pydantic needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

from cloudcart.core.ports.documents import Document

_FORBID = ConfigDict(extra="forbid")

Channel = Literal["email", "sms", "whatsapp", "push", "inApp"]
"""A notification channel (`cloudcart.customers.models.CHANNELS`)."""

MessageKind = Literal["transactional", "marketing"]
"""A kind of message consented to per channel (`cloudcart.customers.models.KINDS`)."""

ConsentSourceName = Literal["default", "web", "app", "api", "support", "provider"]
"""Where a consent came from: `default` until the customer changes it; `provider` when they
told the email or SMS provider (an unsubscribe link, a STOP reply)."""


# Keys of the consents map: typed `str` so that code elsewhere may look up any name, held
# to the closed sets when validated.
ChannelKey = Annotated[str, Field(pattern="^(" + "|".join(get_args(Channel)) + ")$")]
MessageKindKey = Annotated[str, Field(pattern="^(" + "|".join(get_args(MessageKind)) + ")$")]


@with_config(_FORBID)
class CustomerDocument(TypedDict):
    """The customer's profile (id `profile`), created from the token claims on first use.

    `emailVerified`/`phoneVerified` are missing from profiles stored before verification
    existed (read as false).
    """

    id: Literal["profile"]
    kind: Literal["profile"]
    customerId: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timeZone: str | None
    emailVerified: NotRequired[bool]
    phoneVerified: NotRequired[bool]
    createdAt: str
    updatedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class ConsentRecordDocument(TypedDict):
    """The current consent for one channel and kind (or for personalization)."""

    granted: bool
    at: str | None
    source: ConsentSourceName


@with_config(_FORBID)
class PreferencesDocument(TypedDict):
    """The customer's current consent per channel and kind, and `personalization` (id
    `preferences`).

    `personalization` is missing from preferences stored before the preference existed
    (the default applies). `updatedAt` is missing only from the defaults
    `CustomerService.get_preferences` answers when nothing is stored.
    """

    id: Literal["preferences"]
    kind: Literal["preferences"]
    customerId: str
    consents: dict[ChannelKey, dict[MessageKindKey, ConsentRecordDocument]]
    personalization: NotRequired[ConsentRecordDocument]
    updatedAt: NotRequired[str]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class ConsentDocument(TypedDict):
    """One change of consent, append-only (id `cns_...`): a channel and kind, or the
    `personalization` preference (then `channel` and `messageKind` are null).

    `preference` is missing from changes stored before personalization existed (they are
    all channel changes).
    """

    id: str
    kind: Literal["consent"]
    customerId: str
    preference: NotRequired[Literal["channel", "personalization"]]
    channel: Channel | None
    messageKind: MessageKind | None
    granted: bool
    at: str
    source: ConsentSourceName
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class AddressBookDocument(TypedDict):
    """How many addresses the customer has and which is the default (id `address-book`).

    Every address change rewrites it with its ETag, which serialises them.
    """

    id: Literal["address-book"]
    kind: Literal["address-book"]
    customerId: str
    count: int
    defaultAddressId: str | None
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class AddressDocument(TypedDict):
    """One postal address of the customer (id `addr_...`)."""

    id: str
    kind: Literal["address"]
    customerId: str
    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postalCode: str | None
    country: str
    phone: str | None
    isDefault: bool
    createdAt: str
    updatedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class ErasureDocument(TypedDict):
    """The state of the customer's last erasure (id `erasure`), kept after it completed;
    `eventId` names its `customer.erased` event."""

    id: Literal["erasure"]
    kind: Literal["erasure"]
    customerId: str
    status: Literal["in-progress", "completed"]
    eventId: str
    startedAt: str
    completedAt: NotRequired[str]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


CustomersDocument = Annotated[
    CustomerDocument
    | PreferencesDocument
    | ConsentDocument
    | AddressBookDocument
    | AddressDocument
    | ErasureDocument,
    Discriminator("kind"),
]
"""Every document of the customers area's own (outbox events aside), told apart by `kind`."""

AnyCustomersDocument = (
    CustomerDocument
    | PreferencesDocument
    | ConsentDocument
    | AddressBookDocument
    | AddressDocument
    | ErasureDocument
)


def as_document(document: AnyCustomersDocument) -> Document:
    """The document as the documents port takes it (the same object: no copy)."""
    return cast(dict[str, Any], document)


__all__ = [
    "AddressBookDocument",
    "AddressDocument",
    "AnyCustomersDocument",
    "Channel",
    "ConsentDocument",
    "ConsentRecordDocument",
    "ConsentSourceName",
    "CustomerDocument",
    "CustomersDocument",
    "ErasureDocument",
    "MessageKind",
    "PreferencesDocument",
    "as_document",
]
