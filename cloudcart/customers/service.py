"""Profiles, addresses and preferences, stored in the customer's `customers` partition.

The documents of one customer (partition key = customer id) and their exact shapes are
the TypedDicts of `cloudcart.customers.documents` (`CustomerDocument` for the profile,
`PreferencesDocument`, `ConsentDocument`, `AddressBookDocument`, `AddressDocument`,
`ErasureDocument`), beside `customer.*` outbox events until relayed (`cloudcart.core.outbox`).

Every change is written with its `customer.created`/`customer.updated` event in one
transactional batch. Address changes also rewrite the address book with its ETag, which
serialises concurrent address changes of one customer: the 20-address limit and the
"exactly one default" rule hold under any concurrency.

The `personalization` preference says whether the customer's browsing history may be
recorded. Areas that record it ask `personalization_allowed` and register a hook
(`register_personalization_withdrawn`) that deletes what they hold when it is turned off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, cast

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, Conflict, DomainError, NotFound, PreconditionFailed
from cloudcart.core.events import Event, new_event
from cloudcart.core.ids import new_id
from cloudcart.core.outbox import write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    PatchOp,
    Query,
    fill_page,
    strip_system,
)
from cloudcart.customers.documents import (
    AddressBookDocument,
    AddressDocument,
    ConsentDocument,
    ConsentRecordDocument,
    CustomerDocument,
    PreferencesDocument,
    as_document,
)
from cloudcart.customers.events import (
    ChangedField,
    CreatedChanges,
    CreatedField,
    CustomerCreated,
    CustomerUpdated,
    ProfileChanges,
)
from cloudcart.customers.models import (
    CHANNELS,
    DEFAULT_ON,
    KINDS,
    MAX_ADDRESSES,
    PERSONALIZATION_DEFAULT,
    AddressInput,
    PreferencesUpdate,
    ProfilePatch,
)
from cloudcart.identity.caller import Caller

logger = logging.getLogger(__name__)

CONTAINER = "customers"
PROFILE_ID: Final = "profile"
PREFERENCES_ID: Final = "preferences"
ADDRESS_BOOK_ID: Final = "address-book"
ERASURE_ID: Final = "erasure"

PROFILE_FIELDS: tuple[str, ...] = ("name", "email", "phone", "locale", "timeZone")
"""Profile fields the customer sets through PATCH (wire names)."""
VERIFIED_FLAGS: dict[str, str] = {"email": "emailVerified", "phone": "phoneVerified"}
"""The verified flag of each verifiable profile field: set only by `mark_verified`, reset
by any change of the field."""
ADDRESS_FIELDS: tuple[str, ...] = (
    "name",
    "line1",
    "line2",
    "city",
    "region",
    "postalCode",
    "country",
    "phone",
)

HISTORY_IN_PREFERENCES = 100
_RETRIES = 5


class CustomerError(DomainError):
    """A profile or address request refused: the problem's detail and its catalogued type,
    which gives the status and title."""

    def __init__(self, detail: str, type_: str) -> None:
        super().__init__(detail)
        self.problem_type = type_
        self.catalogued(type_)


class ErasureInProgress(Exception):
    """The customer's last erasure did not finish; complete it before serving them."""


PersonalizationWithdrawnHook = Callable[[DocumentStore, str], None]
"""Deletes what an area recorded for personalisation about the customer (the second
argument). Must be idempotent: it runs every time a request turns personalization off,
so a retry after a failure finishes the job."""

_hooks_lock = threading.Lock()
_withdrawn_hooks: dict[str, PersonalizationWithdrawnHook] = {}


def register_personalization_withdrawn(name: str, hook: PersonalizationWithdrawnHook) -> None:
    """Add (or replace) the hook `name`, run when a customer turns personalization off.

    The area that records browsing history registers here, so this package never imports
    it (that area asks `CustomerService.personalization_allowed` in turn).
    """
    with _hooks_lock:
        _withdrawn_hooks[name] = hook


def unregister_personalization_withdrawn(name: str) -> None:
    """Remove the hook `name` (tests use it to clean up)."""
    with _hooks_lock:
        _withdrawn_hooks.pop(name, None)


def personalization_withdrawn_hooks() -> dict[str, PersonalizationWithdrawnHook]:
    """The registered hooks by name, in the order they run."""
    with _hooks_lock:
        return dict(_withdrawn_hooks)


def etag_header(document: Mapping[str, Any]) -> str:
    """The HTTP `ETag` value of a stored document (a quoted string)."""
    etag = str(document.get("_etag", ""))
    return etag if etag.startswith('"') else f'"{etag}"'


def etag_matches(if_match: str, document: Mapping[str, Any]) -> bool:
    """Whether an `If-Match` header value matches the document (`*` matches anything)."""
    current = etag_header(document)
    for candidate in if_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        # A weak tag can never match for If-Match (RFC 9110 13.1.1: strong comparison).
        if tag == current:
            return True
    return False


def _now() -> str:
    return utcnow().isoformat()


def _default_personalization() -> ConsentRecordDocument:
    return {"granted": PERSONALIZATION_DEFAULT, "at": None, "source": "default"}


def _default_consents(at: str | None = None) -> dict[str, dict[str, ConsentRecordDocument]]:
    return {
        channel: {
            kind: {"granted": (channel, kind) in DEFAULT_ON, "at": at, "source": "default"}
            for kind in KINDS
        }
        for channel in CHANNELS
    }


def _updated_event(
    customer_id: str,
    changed: Sequence[str],
    changes: dict[str, Any],
    correlation_id: str | None,
) -> Event:
    # The callers build `changes` member by member from the profile fields they change.
    data: CustomerUpdated = {
        "customerId": customer_id,
        "changedFields": cast("list[ChangedField]", list(changed)),
        "changes": cast("ProfileChanges", changes),
    }
    return new_event("customer.updated", customer_id, data, correlation_id=correlation_id)


def _retryable(exc: BatchFailed, index: int) -> bool:
    # Only a lost race on the concurrency token (the address book) is worth retrying.
    return exc.index == index and isinstance(exc.cause, PreconditionFailed | Conflict)


class CustomerService:
    """Profile, address and preference operations of one request."""

    def __init__(self, documents: DocumentStore, *, correlation_id: str | None = None) -> None:
        """Works on the `customers` container of `documents`; events carry `correlation_id`."""
        self.documents = documents
        self.container: Container = documents.container(CONTAINER)
        self.correlation_id = correlation_id

    # --- profile ------------------------------------------------------------------------

    def ensure_profile(self, caller: Caller) -> CustomerDocument:
        """The caller's profile, created from the token claims on first use.

        The create is conditional (a fixed document id), so concurrent first calls create
        one profile and one `customer.created` event: the loser of the race reads the
        winner's profile. Raises ErasureInProgress when an interrupted erasure must be
        completed first (otherwise the half-erased data would seem to come back).
        """
        customer_id = caller.customer_id
        try:
            return self._read_profile(customer_id)
        except NotFound:
            pass
        try:
            marker = self.container.read(ERASURE_ID, customer_id)
        except NotFound:
            marker = None
        if marker is not None and marker.get("status") != "completed":
            raise ErasureInProgress(customer_id)
        now = _now()
        profile: CustomerDocument = {
            "id": PROFILE_ID,
            "kind": "profile",
            "customerId": customer_id,
            "name": caller.name,
            "email": caller.email,
            "phone": None,
            "locale": None,
            "timeZone": None,
            "emailVerified": False,
            "phoneVerified": False,
            "createdAt": now,
            "updatedAt": now,
        }
        preferences: PreferencesDocument = {
            "id": PREFERENCES_ID,
            "kind": "preferences",
            "customerId": customer_id,
            "consents": _default_consents(),
            "personalization": _default_personalization(),
            "updatedAt": now,
        }
        claimed: Mapping[str, Any] = profile
        present = [f for f in ("name", "email") if claimed[f] is not None]
        created: CustomerCreated = {
            "customerId": customer_id,
            "changedFields": cast("list[CreatedField]", present),
            "changes": cast("CreatedChanges", {f: claimed[f] for f in present}),
        }
        event = new_event(
            "customer.created", customer_id, created, correlation_id=self.correlation_id
        )
        try:
            results = write_with_events(
                self.container,
                customer_id,
                [
                    BatchOp("create", document=as_document(profile)),
                    BatchOp("upsert", document=as_document(preferences)),
                ],
                [event],
            )
        except BatchFailed as exc:
            if exc.index == 0 and isinstance(exc.cause, Conflict):
                return self._read_profile(customer_id)
            raise
        return cast(CustomerDocument, results[0])

    def _read_profile(self, customer_id: str) -> CustomerDocument:
        """The stored profile; NotFound when there is none."""
        return cast(CustomerDocument, self.container.read(PROFILE_ID, customer_id))

    def get_profile(self, customer_id: str) -> CustomerDocument | None:
        """The stored profile, or None (never signed in to the API, or erased)."""
        try:
            return self._read_profile(customer_id)
        except NotFound:
            return None

    def is_erased(self, customer_id: str) -> bool:
        """Whether the customer's erasure has started (their data is gone or going)."""
        try:
            self.container.read(ERASURE_ID, customer_id)
        except NotFound:
            return False
        return True

    def update_profile(
        self, caller: Caller, patch: ProfilePatch, if_match: str | None
    ) -> CustomerDocument:
        """Apply `patch` (only the fields it sets); 412 when `if_match` is stale.

        A new email or phone is unverified: its verified flag goes false in the same write.
        No write and no event when nothing actually changes.
        """
        current = self.ensure_profile(caller)
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailed("profile ETag does not match")
        stored: Mapping[str, Any] = current
        requested = patch.model_dump(include=patch.model_fields_set, by_alias=True)
        changed = [f for f in PROFILE_FIELDS if f in requested and requested[f] != stored.get(f)]
        if not changed:
            return current
        changes: dict[str, Any] = {f: requested[f] for f in changed}
        for field, flag in VERIFIED_FLAGS.items():
            if field in changes and stored.get(flag):
                changes[flag] = False
        updated = {**strip_system(current), **changes}
        updated["updatedAt"] = _now()
        event = _updated_event(caller.customer_id, list(changes), changes, self.correlation_id)
        # The stored ETag (not only the client's) guards the write: a concurrent PATCH
        # between our read and this batch makes it fail with 412 instead of being lost.
        results = write_with_events(
            self.container,
            caller.customer_id,
            [BatchOp("replace", document=updated, if_match=current["_etag"])],
            [event],
        )
        return cast(CustomerDocument, results[0])

    def mark_verified(
        self, customer_id: str, channel: Literal["email", "phone"], destination: str
    ) -> bool:
        """Record that the customer proved `destination` (their email or phone) is theirs.

        Sets `emailVerified`/`phoneVerified` only while the profile's email/phone still
        equals `destination`: a code sent to an address the customer has since replaced
        proves nothing about the new one. Returns False (nothing written) in that case or
        when there is no profile; True when the flag is set, including when it already was
        (no write then). The write carries its `customer.updated` event.
        """
        flag = VERIFIED_FLAGS[channel]
        for _ in range(_RETRIES):
            current = self.get_profile(customer_id)
            if current is None or current.get(channel) != destination:
                return False
            if cast(Mapping[str, Any], current).get(flag) is True:
                return True
            updated = {**strip_system(current), flag: True, "updatedAt": _now()}
            event = _updated_event(customer_id, [flag], {flag: True}, self.correlation_id)
            try:
                # If-Match on the version just compared: a PATCH of the email in between
                # must not be marked verified with the old address's proof.
                write_with_events(
                    self.container,
                    customer_id,
                    [BatchOp("replace", document=updated, if_match=current["_etag"])],
                    [event],
                )
            except BatchFailed as exc:
                if exc.index == 0 and isinstance(exc.cause, PreconditionFailed | NotFound):
                    continue  # changed or erased meanwhile: look again
                raise
            return True
        raise CustomerError(
            "the profile was changed concurrently several times; retry", "concurrent-change"
        )

    # --- addresses ----------------------------------------------------------------------

    def list_addresses(self, customer_id: str) -> list[AddressDocument]:
        """Every address of the customer, the default first, then oldest first."""
        items = cast(
            list[AddressDocument],
            self._query(
                customer_id, [Filter("kind", "eq", "address")], [Order("createdAt")], MAX_ADDRESSES
            ),
        )
        return sorted(items, key=lambda a: (not a.get("isDefault"), str(a.get("createdAt"))))

    def get_address(self, customer_id: str, address_id: str) -> AddressDocument:
        """One address of the customer; NotFound for an unknown id or another customer's.

        The read is inside the caller's own partition, so another customer's address id
        simply does not exist here: 404, never 403, reveals nothing.
        """
        document = self.container.read(address_id, customer_id)
        if document.get("kind") != "address":
            raise NotFound(address_id)
        return cast(AddressDocument, document)

    def create_address(self, customer_id: str, data: AddressInput) -> AddressDocument:
        """Add an address (409 `address-limit` past MAX_ADDRESSES)."""
        for _ in range(_RETRIES):
            book = self._address_book(customer_id)
            if int(book.get("count", 0)) >= MAX_ADDRESSES:
                raise CustomerError(
                    f"a customer can keep at most {MAX_ADDRESSES} addresses; delete one first",
                    "address-limit",
                )
            old_default = book.get("defaultAddressId")
            make_default = data.is_default or old_default is None
            now = _now()
            address = {
                "id": new_id("addr_"),
                "kind": "address",
                "customerId": customer_id,
                **_address_fields(data),
                "isDefault": make_default,
                "createdAt": now,
                "updatedAt": now,
            }
            new_book = {
                **strip_system(book),
                "count": int(book.get("count", 0)) + 1,
                "defaultAddressId": address["id"] if make_default else old_default,
            }
            ops = [_book_op(book, new_book), BatchOp("create", document=address)]
            if make_default and old_default:
                ops.append(_set_default_op(old_default, False, now))
            try:
                results = self._write_address_change(customer_id, ops, address["id"], "added")
            except BatchFailed as exc:
                if _retryable(exc, 0):
                    continue
                raise
            return cast(AddressDocument, results[1])
        raise _busy()

    def replace_address(
        self, customer_id: str, address_id: str, data: AddressInput
    ) -> AddressDocument:
        """Replace an address; `isDefault: true` moves the default here. Unsetting the
        default is refused (422): make another address the default instead."""
        for _ in range(_RETRIES):
            current = self.get_address(customer_id, address_id)
            book = self._address_book(customer_id)
            was_default = book.get("defaultAddressId") == address_id
            if was_default and not data.is_default:
                raise CustomerError(
                    "this is the default address; make another address the default instead",
                    "default-address-required",
                )
            now = _now()
            updated = {
                **strip_system(current),
                **_address_fields(data),
                "isDefault": data.is_default,
                "updatedAt": now,
            }
            new_book = {**strip_system(book), "defaultAddressId": book.get("defaultAddressId")}
            ops = [_book_op(book, new_book)]
            old_default = book.get("defaultAddressId")
            if data.is_default and not was_default:
                new_book["defaultAddressId"] = address_id
                if old_default:
                    ops.append(_set_default_op(str(old_default), False, now))
            ops.insert(1, BatchOp("replace", document=updated, if_match=current["_etag"]))
            try:
                results = self._write_address_change(customer_id, ops, address_id, "changed")
            except BatchFailed as exc:
                if _retryable(exc, 0) or _retryable(exc, 1):
                    continue
                raise
            return cast(AddressDocument, results[1])
        raise _busy()

    def delete_address(self, customer_id: str, address_id: str) -> None:
        """Delete an address; deleting the default makes the oldest remaining one the
        default (or leaves none when it was the last)."""
        for _ in range(_RETRIES):
            current = self.get_address(customer_id, address_id)
            book = self._address_book(customer_id)
            now = _now()
            new_book = {**strip_system(book), "count": max(int(book.get("count", 1)) - 1, 0)}
            ops = [
                _book_op(book, new_book),
                BatchOp("delete", id=address_id, if_match=current["_etag"]),
            ]
            if book.get("defaultAddressId") == address_id:
                others = [a for a in self.list_addresses(customer_id) if a["id"] != address_id]
                others.sort(key=lambda a: str(a.get("createdAt")))
                promoted = others[0]["id"] if others else None
                new_book["defaultAddressId"] = promoted
                if promoted:
                    ops.append(_set_default_op(promoted, True, now))
            try:
                self._write_address_change(customer_id, ops, address_id, "removed")
            except BatchFailed as exc:
                if _retryable(exc, 0) or _retryable(exc, 1):
                    continue
                raise
            return
        raise _busy()

    def _address_book(self, customer_id: str) -> AddressBookDocument:
        try:
            return cast(AddressBookDocument, self.container.read(ADDRESS_BOOK_ID, customer_id))
        except NotFound:
            # Not stored yet: `_book_op` creates it (a conditional create, so two first
            # addresses racing still serialise on it).
            return {
                "id": ADDRESS_BOOK_ID,
                "kind": "address-book",
                "customerId": customer_id,
                "count": 0,
                "defaultAddressId": None,
            }

    def _write_address_change(
        self, customer_id: str, ops: list[BatchOp], address_id: str, change: str
    ) -> list[Document]:
        event = _updated_event(
            customer_id,
            ["addresses"],
            {"addresses": {"addressId": address_id, "change": change}},
            self.correlation_id,
        )
        return write_with_events(self.container, customer_id, ops, [event])

    # --- preferences --------------------------------------------------------------------

    def get_preferences(self, customer_id: str) -> PreferencesDocument:
        """The stored preferences, or the defaults when none are stored."""
        try:
            return cast(PreferencesDocument, self.container.read(PREFERENCES_ID, customer_id))
        except NotFound:
            return {
                "id": PREFERENCES_ID,
                "kind": "preferences",
                "customerId": customer_id,
                "consents": _default_consents(),
                "personalization": _default_personalization(),
            }

    def personalization_allowed(self, customer_id: str) -> bool:
        """Whether the customer's browsing history may be recorded and used (one point
        read). On by default: true for a customer without stored preferences."""
        try:
            document = self.container.read(PREFERENCES_ID, customer_id)
        except NotFound:
            return PERSONALIZATION_DEFAULT
        record = document.get("personalization")
        if not isinstance(record, dict):
            # Preferences stored before the preference existed: the default applies.
            return PERSONALIZATION_DEFAULT
        return bool(record.get("granted", PERSONALIZATION_DEFAULT))

    def consent_history(
        self, customer_id: str, *, limit: int | None = None
    ) -> list[ConsentDocument]:
        """Consent changes, oldest first (the most recent `limit` when given)."""
        items = cast(
            list[ConsentDocument],
            self._query(customer_id, [Filter("kind", "eq", "consent")], [Order("at")], limit=None),
        )
        return items[-limit:] if limit else items

    def update_preferences(
        self, customer_id: str, update: PreferencesUpdate, source: str
    ) -> PreferencesDocument:
        """Apply the changes; each flip of a flag is a new consent record and history entry.

        Returns the preferences document (unchanged, without a write, when nothing flips).
        Whenever the update says `personalization: false` (a flip or not), the registered
        withdrawal hooks run after the write, so a retry after a failed deletion of the
        recorded history completes it.
        """
        current = self.get_preferences(customer_id)
        consents: dict[str, dict[str, Any]] = {
            ch: {k: dict(v) for k, v in kinds.items()}
            for ch, kinds in current.get("consents", {}).items()
        }
        defaults = _default_consents()
        at = _now()
        requested = (
            update.channels.model_dump(by_alias=True, exclude_none=True)
            if update.channels is not None
            else {}
        )
        entries: list[Document] = []
        flips: dict[str, dict[str, bool]] = {}
        for channel in CHANNELS:
            for kind, granted in requested.get(channel, {}).items():
                record = consents.setdefault(channel, defaults[channel]).setdefault(
                    kind, defaults[channel][kind]
                )
                if bool(record.get("granted")) == granted:
                    continue
                consents[channel][kind] = {"granted": granted, "at": at, "source": source}
                flips.setdefault(channel, {})[kind] = granted
                entries.append(
                    {
                        "id": new_id("cns_"),
                        "kind": "consent",
                        "customerId": customer_id,
                        "preference": "channel",
                        "channel": channel,
                        "messageKind": kind,
                        "granted": granted,
                        "at": at,
                        "source": source,
                    }
                )
        personalization = dict(current.get("personalization") or _default_personalization())
        personalization_flipped = update.personalization is not None and (
            bool(personalization.get("granted")) != update.personalization
        )
        if personalization_flipped:
            personalization = {"granted": update.personalization, "at": at, "source": source}
            entries.append(
                {
                    "id": new_id("cns_"),
                    "kind": "consent",
                    "customerId": customer_id,
                    "preference": "personalization",
                    "channel": None,
                    "messageKind": None,
                    "granted": update.personalization,
                    "at": at,
                    "source": source,
                }
            )
        result = current
        if entries:
            updated = {
                **strip_system(current),
                "consents": consents,
                "personalization": personalization,
                "updatedAt": at,
            }
            first: BatchOp = (
                BatchOp("replace", document=updated, if_match=current["_etag"])
                if "_etag" in current
                else BatchOp("create", document=updated)
            )
            # `personalization` rides in `changes` beside the channel flips: the event's
            # schema lists `preferences` as the changed field for both.
            changes: dict[str, Any] = {}
            if flips:
                changes["preferences"] = flips
            if personalization_flipped:
                changes["personalization"] = update.personalization
            event = _updated_event(customer_id, ["preferences"], changes, self.correlation_id)
            results = write_with_events(
                self.container,
                customer_id,
                [first, *(BatchOp("create", document=e) for e in entries)],
                [event],
            )
            result = cast(PreferencesDocument, results[0])
        if update.personalization is False:
            self._personalization_withdrawn(customer_id)
        return result

    def _personalization_withdrawn(self, customer_id: str) -> None:
        for name, hook in personalization_withdrawn_hooks().items():
            logger.info("personalization withdrawn by %s: %s", customer_id, name)
            hook(self.documents, customer_id)

    def customers_with_phone(self, phone: str, limit: int = 50) -> list[str]:
        """Ids of the customers whose profile has this E.164 number (a STOP or START
        reply names only the number). A cross-partition query: rare, and bounded."""
        query = Query(
            filters=(Filter("kind", "eq", "profile"), Filter("phone", "eq", phone)), limit=limit
        )
        return [str(d["customerId"]) for d in fill_page(self.container, query).items]

    # --- helpers ------------------------------------------------------------------------

    def _query(
        self,
        customer_id: str,
        filters: Sequence[Filter],
        order: Sequence[Order],
        limit: int | None,
    ) -> list[Document]:
        found: list[Document] = []
        continuation: str | None = None
        query = Query(filters=tuple(filters), order_by=tuple(order), limit=100)
        while True:
            page = self.container.query(query, partition_key=customer_id, continuation=continuation)
            found.extend(page.items)
            continuation = page.continuation
            if continuation is None or (limit is not None and len(found) >= limit):
                return found


def _address_fields(data: AddressInput) -> dict[str, Any]:
    dumped = data.model_dump(by_alias=True)
    return {f: dumped.get(f) for f in ADDRESS_FIELDS}


def _book_op(book: Mapping[str, Any], new_book: Document) -> BatchOp:
    if "_etag" in book:
        return BatchOp("replace", document=new_book, if_match=book["_etag"])
    return BatchOp("create", document=new_book)


def _set_default_op(address_id: str, is_default: bool, now: str) -> BatchOp:
    return BatchOp(
        "patch",
        id=address_id,
        patch=(PatchOp("set", "isDefault", is_default), PatchOp("set", "updatedAt", now)),
    )


def _busy() -> CustomerError:
    return CustomerError(
        "the addresses were changed concurrently several times; retry", "concurrent-change"
    )
