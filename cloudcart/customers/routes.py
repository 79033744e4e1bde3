"""`/api/me/...`: the signed-in customer's profile, addresses, preferences, export, erasure.

Every route works only on the caller's own partition, so another customer's ids are
simply unknown here (404). The first call of the family creates the profile from the
token claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response, status
from pydantic import WithJsonSchema

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.problems import Problem
from cloudcart.api.responses import problem_responses
from cloudcart.customers.documents import CustomerDocument, PreferencesDocument
from cloudcart.customers.models import (
    CHANNELS,
    KINDS,
    PERSONALIZATION_DEFAULT,
    Address,
    AddressInput,
    AddressList,
    ConsentEntry,
    ConsentRecord,
    CustomerExport,
    Preferences,
    PreferencesUpdate,
    Profile,
    ProfilePatch,
    any_case,
)
from cloudcart.customers.service import (
    HISTORY_IN_PREFERENCES,
    CustomerService,
    ErasureInProgress,
    etag_header,
)
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import CurrentCustomer

router = APIRouter(prefix="/api/me", tags=["customers"])

CONSENT_SOURCE_HEADER = "X-Consent-Source"
CONSENT_SOURCES = ("web", "app", "api", "support")
# Any case, blank meaning absent; declared only, so a bad value stays 422 invalid-consent-source.
_CONSENT_SOURCE_PATTERN = (
    r"^\s*(" + "|".join(any_case(source) for source in CONSENT_SOURCES) + r")?\s*$"
)
_READ = problem_responses(401, 503)
_WRITE = problem_responses(401, 403, 409, 503)
_ONE = problem_responses(401, 403, 404, 409, 503)


def _service(services: ServicesDep) -> CustomerService:
    return CustomerService(services.documents, correlation_id=correlation_id.get())


Service = Annotated[CustomerService, Depends(_service)]


def _privacy_context(services: ServicesDep, caller: Caller) -> Any:
    from cloudcart.customers.privacy import PrivacyContext

    return PrivacyContext(
        customer_id=caller.customer_id,
        documents=services.documents,
        settings=services.settings,
        correlation_id=correlation_id.get(),
    )


def current_profile(
    caller: CurrentCustomer, service: Service, services: ServicesDep
) -> CustomerDocument:
    """The caller's profile, created on first use; an interrupted erasure is completed
    first, so its half-deleted data never resurfaces."""
    try:
        return service.ensure_profile(caller)
    except ErasureInProgress:
        from cloudcart.customers.privacy import erase_customer

        erase_customer(_privacy_context(services, caller), actor_id=caller.customer_id)
        return service.ensure_profile(caller)


CurrentProfile = Annotated[CustomerDocument, Depends(current_profile)]


def _profile(document: CustomerDocument, response: Response) -> Profile:
    response.headers["ETag"] = etag_header(document)
    return Profile.model_validate(document)


@router.get(
    "/profile",
    response_model=Profile,
    summary="The signed-in customer's profile",
    responses=_READ,
)
def read_profile(profile: CurrentProfile, response: Response) -> Profile:
    """The profile (created from the token's claims on the first call); `ETag` header for
    a later conditional PATCH."""
    return _profile(profile, response)


@router.patch(
    "/profile",
    response_model=Profile,
    summary="Change the profile",
    responses=problem_responses(401, 403, 409, 412, 503),
)
def update_profile(
    patch: ProfilePatch,
    caller: CurrentCustomer,
    profile: CurrentProfile,
    service: Service,
    response: Response,
    if_match: Annotated[
        str | None,
        WithJsonSchema({"type": "string"}),
        Header(description="ETag from a previous read: 412 when the profile changed since."),
    ] = None,
) -> Profile:
    """Change name, email, phone (E.164), locale (BCP 47) or timeZone (IANA); `null` clears
    a field. A new email or phone is unverified until confirmed with a code again."""
    return _profile(service.update_profile(caller, patch, if_match), response)


# --- addresses ----------------------------------------------------------------------------


@router.get(
    "/addresses", response_model=AddressList, summary="The customer's addresses", responses=_READ
)
def list_addresses(profile: CurrentProfile, service: Service) -> AddressList:
    """Every address, the default first."""
    items = service.list_addresses(profile["customerId"])
    return AddressList(items=[Address.model_validate(a) for a in items])


@router.post(
    "/addresses",
    response_model=Address,
    status_code=status.HTTP_201_CREATED,
    summary="Add an address",
    responses=_WRITE,
)
def create_address(
    body: AddressInput, profile: CurrentProfile, service: Service, response: Response
) -> Address:
    """Add an address (at most 20); the first one becomes the default."""
    stored = service.create_address(profile["customerId"], body)
    response.headers["Location"] = f"/api/me/addresses/{stored['id']}"
    return Address.model_validate(stored)


@router.get(
    "/addresses/{addressId}",
    response_model=Address,
    summary="One address",
    responses=problem_responses(401, 404, 503),
)
def read_address(addressId: str, profile: CurrentProfile, service: Service) -> Address:
    """One address of the caller; 404 for any id that is not theirs."""
    return Address.model_validate(service.get_address(profile["customerId"], addressId))


@router.put(
    "/addresses/{addressId}", response_model=Address, summary="Replace an address", responses=_ONE
)
def replace_address(
    addressId: str,
    body: AddressInput,
    profile: CurrentProfile,
    service: Service,
) -> Address:
    """Replace the whole address; `isDefault: true` makes it the default."""
    return Address.model_validate(service.replace_address(profile["customerId"], addressId, body))


@router.delete(
    "/addresses/{addressId}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an address",
    responses=_ONE,
)
def delete_address(addressId: str, profile: CurrentProfile, service: Service) -> Response:
    """Delete an address; when it was the default, the oldest remaining one takes over."""
    service.delete_address(profile["customerId"], addressId)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- preferences --------------------------------------------------------------------------


def _preferences(
    service: CustomerService, customer_id: str, document: PreferencesDocument
) -> Preferences:
    consents: Mapping[str, Any] = document.get("consents", {})
    channels = {
        ch: {k: bool(consents.get(ch, {}).get(k, {}).get("granted")) for k in KINDS}
        for ch in CHANNELS
    }
    history = service.consent_history(customer_id, limit=HISTORY_IN_PREFERENCES)
    personalization = document.get("personalization")
    if not isinstance(personalization, dict):
        # Stored before the preference existed: the default applies.
        personalization = {"granted": PERSONALIZATION_DEFAULT, "at": None, "source": "default"}
    return Preferences.model_validate(
        {
            "channels": channels,
            "consents": {
                ch: {k: ConsentRecord.model_validate(consents[ch][k]) for k in KINDS}
                for ch in CHANNELS
            },
            "personalization": bool(personalization.get("granted")),
            "personalizationConsent": ConsentRecord.model_validate(personalization),
            "history": [
                ConsentEntry.model_validate({**e, "kind": e["messageKind"]}) for e in history
            ],
        }
    )


@router.get(
    "/preferences",
    response_model=Preferences,
    summary="Notification and personalisation preferences and consent",
    responses=_READ,
)
def read_preferences(profile: CurrentProfile, service: Service) -> Preferences:
    """Per channel and kind: on or off, the consent record behind it, and the history;
    `personalization` (browsing history) with its consent record."""
    customer_id = profile["customerId"]
    return _preferences(service, customer_id, service.get_preferences(customer_id))


@router.put(
    "/preferences",
    response_model=Preferences,
    summary="Change notification and personalisation preferences",
    responses=problem_responses(401, 403, 412, 503),
)
def update_preferences(
    body: PreferencesUpdate,
    profile: CurrentProfile,
    service: Service,
    consent_source: Annotated[
        str | None,
        # A header is a string or absent: without this the document would also allow null.
        WithJsonSchema({"type": "string", "pattern": _CONSENT_SOURCE_PATTERN}),
        Header(
            alias=CONSENT_SOURCE_HEADER,
            description="Where the consent was given (web, app, api, support, any case) when "
            "the body has no `source`; any other value is refused even when it has one.",
        ),
    ] = None,
) -> Preferences:
    """Turn channels and kinds, or `personalization`, on or off; every change is recorded
    with its time and source.

    WhatsApp and marketing stay off until turned on here (explicit opt-in). Personalization
    is on until turned off; `personalization: false` also deletes the browsing history
    recorded so far.
    """
    header_source = (consent_source or "").strip().lower() or None
    source = body.source or header_source or "api"
    if header_source is not None and header_source not in CONSENT_SOURCES:
        raise Problem.of(
            "invalid-consent-source",
            f"{CONSENT_SOURCE_HEADER} must be one of web, app, api, support",
        )
    customer_id = profile["customerId"]
    stored = service.update_preferences(customer_id, body, source)
    return _preferences(service, customer_id, stored)


# --- privacy ------------------------------------------------------------------------------


@router.get(
    "/export",
    response_model=CustomerExport,
    summary="Everything Cloudcart holds about the customer",
    responses=_READ,
)
def export_me(
    caller: CurrentCustomer, profile: CurrentProfile, services: ServicesDep
) -> CustomerExport:
    """One JSON document with the profile, addresses, preferences and consent history,
    session metadata, browsing history and what every other area holds (audited)."""
    from cloudcart.customers.privacy import export_customer

    exported = export_customer(_privacy_context(services, caller), actor_id=caller.customer_id)
    return CustomerExport.model_validate(exported)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase the customer",
    responses=problem_responses(401, 403, 503),
)
def erase_me(caller: CurrentCustomer, services: ServicesDep) -> Response:
    """Erase the profile, addresses, preferences, sessions, history and in-app
    notifications, and tell partners (`customer.erased`). Safe to retry; audited. The next
    authenticated call starts a new, empty profile."""
    from cloudcart.customers.privacy import erase_customer

    erase_customer(_privacy_context(services, caller), actor_id=caller.customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
