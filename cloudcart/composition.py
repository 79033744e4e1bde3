"""Composition: picks each port's adapter from settings and builds it once, on first use.

The one place that knows every adapter. The Functions app (function_app.py), the HTTP app
(`create_app`, whose routes reach it through `cloudcart.api.deps`), the trigger functions
(through `services()`) and the `cloudcart` CLI all get their adapters here.

Each builder imports its adapter module inside the function, so a cold start pays only for
the SDKs of the adapters it actually uses (the Azure SDKs are heavy to import); importing
this module costs the settings and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from cloudcart.core.settings import Adapter, Settings, get_settings

if TYPE_CHECKING:
    from cloudcart.core.ports.blobs import BlobStore
    from cloudcart.core.ports.channels import EmailChannel, TextChannel
    from cloudcart.core.ports.documents import DocumentStore
    from cloudcart.core.ports.messages import MessagePublisher
    from cloudcart.core.ports.partners import (
        AccountingPartner,
        CrmPartner,
        FulfilmentPartner,
        InventoryPartner,
    )
    from cloudcart.core.ports.payments import PaymentGateway
    from cloudcart.core.ports.search import SearchIndex
    from cloudcart.identity.tokens import TokenValidator


# --- builders: one per port, each importing only the adapter it picks ----------------------


def build_documents(settings: Settings) -> DocumentStore:
    """Cosmos DB, or the embedded SQLite store (`CLOUDCART_DOCUMENTS_ADAPTER`)."""
    if settings.documents_adapter == Adapter.azure:
        from cloudcart.core.documents import cosmos

        return cosmos.from_settings(settings)
    from cloudcart.core.documents import embedded

    return embedded.from_settings(settings)


def build_blobs(settings: Settings) -> BlobStore:
    """Blob Storage, or the embedded folder (`CLOUDCART_BLOBS_ADAPTER`)."""
    if settings.blobs_adapter == Adapter.azure:
        from cloudcart.core.blobs import azure

        return azure.from_settings(settings)
    from cloudcart.core.blobs import embedded

    return embedded.from_settings(settings)


def build_messages(settings: Settings) -> MessagePublisher:
    """Service Bus, or the embedded SQLite broker (`CLOUDCART_MESSAGES_ADAPTER`)."""
    if settings.messages_adapter == Adapter.azure:
        from cloudcart.core.messages import servicebus

        return servicebus.from_settings(settings)
    from cloudcart.core.messages import embedded

    return embedded.from_settings(settings)


def build_search(settings: Settings) -> SearchIndex:
    """Azure AI Search, or the embedded tantivy index (`CLOUDCART_SEARCH_ADAPTER`)."""
    if settings.search_adapter == Adapter.azure:
        from cloudcart.core.search import azure

        return azure.from_settings(settings)
    from cloudcart.core.search import embedded

    return embedded.from_settings(settings)


def build_payments(settings: Settings, documents: Callable[[], DocumentStore]) -> PaymentGateway:
    """The gateway of `CLOUDCART_PAYMENTS_PROVIDER`; the test gateway keeps its payments in
    the documents port (`documents` builds or returns it)."""
    if settings.payments_provider == "stripe":
        from cloudcart.integrations.payments import stripe_gateway

        return stripe_gateway.from_settings(settings)
    if settings.payments_provider == "disabled":
        from cloudcart.integrations.payments import disabled

        return disabled.from_settings(settings)
    from cloudcart.integrations.payments import test_gateway

    return test_gateway.from_settings(settings, documents())


def _configured(build: Callable[[], Any]) -> Any:
    # A provider without its settings (ValueError from `from_settings`) refuses each send as
    # busy instead of failing every function that touches it.
    try:
        return build()
    except ValueError as missing:
        from cloudcart.core.ports.channels import Unconfigured

        return Unconfigured(str(missing))


def build_email_channel(settings: Settings, documents: Callable[[], DocumentStore]) -> EmailChannel:
    """SendGrid, or the capture adapter that keeps each message in the documents port
    (`NOTIFICATIONS_EMAIL_PROVIDER`)."""
    if settings.notifications_email_provider == "sendgrid":
        from cloudcart.notifications.sendgrid_adapter import SendGridEmail

        return cast("EmailChannel", _configured(lambda: SendGridEmail.from_settings(settings)))
    from cloudcart.notifications import capture

    return capture.email_from_settings(settings, documents())


def build_text_channel(settings: Settings, documents: Callable[[], DocumentStore]) -> TextChannel:
    """Twilio (SMS and WhatsApp), or the capture adapter (`NOTIFICATIONS_TEXT_PROVIDER`)."""
    if settings.notifications_text_provider == "twilio":
        from cloudcart.notifications.twilio_adapter import TwilioText

        return cast("TextChannel", _configured(lambda: TwilioText.from_settings(settings)))
    from cloudcart.notifications import capture

    return capture.text_from_settings(settings, documents())


def build_token_validator(settings: Settings) -> TokenValidator:
    """Validates bearer tokens from the configured issuers (`CLOUDCART_IDENTITY_ADAPTER`)."""
    from cloudcart.identity import tokens

    return tokens.from_settings(settings)


# --- the services of one app instance ------------------------------------------------------


class Services:
    """The adapters of one app instance, built lazily and shared by every request."""

    def __init__(self, settings: Settings, *, adapters: Mapping[str, Any] | None = None) -> None:
        """`adapters` pre-sets adapters by port name (`"messages"`, `"documents"`, ...)
        instead of building them from settings: tests inject a broker with their own
        topology this way."""
        self.settings = settings
        # Re-entrant: building one adapter may need another (the test gateway stores its
        # payments in the documents port).
        self._lock = threading.RLock()
        self._built: dict[str, Any] = dict(adapters or {})

    def _get(self, key: str, build: Callable[[], Any]) -> Any:
        # Double-checked so concurrent first requests build an adapter once.
        if key not in self._built:
            with self._lock:
                if key not in self._built:
                    self._built[key] = build()
        return self._built[key]

    @property
    def reads_in_process(self) -> bool:
        """True when the documents, blobs and search adapters are the embedded ones.

        Their reads are in-process work that never waits on a network or a writer (SQLite in
        WAL mode, tantivy's memory-mapped segments), cheaper to run on the event loop than
        to hand to a worker thread; the Azure SDKs' calls block on the network and go to the
        thread pool (`cloudcart.api.deps.run_read`).
        """
        s = self.settings
        return all(
            adapter == Adapter.embedded
            for adapter in (s.documents_adapter, s.blobs_adapter, s.search_adapter)
        )

    def _documents(self) -> DocumentStore:
        return self.documents

    @property
    def documents(self) -> DocumentStore:
        """The documents port."""
        return cast("DocumentStore", self._get("documents", lambda: build_documents(self.settings)))

    @property
    def blobs(self) -> BlobStore:
        """The blobs port."""
        return cast("BlobStore", self._get("blobs", lambda: build_blobs(self.settings)))

    @property
    def messages(self) -> MessagePublisher:
        """The messages port (publishing; the embedded broker also consumes)."""
        return cast(
            "MessagePublisher", self._get("messages", lambda: build_messages(self.settings))
        )

    @property
    def search(self) -> SearchIndex:
        """The search port (product search and suggestions)."""
        return cast("SearchIndex", self._get("search", lambda: build_search(self.settings)))

    @property
    def payments(self) -> PaymentGateway:
        """The payment gateway chosen by `CLOUDCART_PAYMENTS_PROVIDER`."""
        return cast(
            "PaymentGateway",
            self._get("payments", lambda: build_payments(self.settings, self._documents)),
        )

    def _partner(self, key: str) -> Any:
        def build() -> Any:
            from cloudcart.integrations.partners import http

            builders: dict[str, Callable[[Settings], Any]] = {
                "fulfilment_partner": http.fulfilment_partner_from_settings,
                "inventory_partner": http.inventory_partner_from_settings,
                "accounting_partner": http.accounting_partner_from_settings,
                "crm_partner": http.crm_partner_from_settings,
            }
            return builders[key](self.settings)

        return self._get(key, build)

    @property
    def fulfilment_partner(self) -> FulfilmentPartner | None:
        """The fulfilment partner's API, or None when `FULFILMENT_PARTNER_URL` is unset."""
        return cast("FulfilmentPartner | None", self._partner("fulfilment_partner"))

    @property
    def inventory_partner(self) -> InventoryPartner | None:
        """The WMS's API, or None when `INVENTORY_PARTNER_URL` is unset."""
        return cast("InventoryPartner | None", self._partner("inventory_partner"))

    @property
    def accounting_partner(self) -> AccountingPartner | None:
        """The accounting system's API, or None when `ACCOUNTING_PARTNER_URL` is unset."""
        return cast("AccountingPartner | None", self._partner("accounting_partner"))

    @property
    def crm_partner(self) -> CrmPartner | None:
        """The CRM's API, or None when `CRM_PARTNER_URL` is unset."""
        return cast("CrmPartner | None", self._partner("crm_partner"))

    @property
    def email_channel(self) -> EmailChannel:
        """Email: SendGrid, or the local capture adapter (`NOTIFICATIONS_EMAIL_PROVIDER`)."""
        return cast(
            "EmailChannel",
            self._get("email_channel", lambda: build_email_channel(self.settings, self._documents)),
        )

    @property
    def text_channel(self) -> TextChannel:
        """SMS and WhatsApp: Twilio, or the local capture adapter
        (`NOTIFICATIONS_TEXT_PROVIDER`)."""
        return cast(
            "TextChannel",
            self._get("text_channel", lambda: build_text_channel(self.settings, self._documents)),
        )

    @property
    def token_validator(self) -> TokenValidator:
        """Validates bearer tokens from the configured issuers."""
        return cast(
            "TokenValidator",
            self._get("token_validator", lambda: build_token_validator(self.settings)),
        )

    def built(self) -> dict[str, Any]:
        """The adapters built so far, by port name (readiness checks only those in use)."""
        return dict(self._built)

    def close(self) -> None:
        """Close every adapter that holds connections."""
        for adapter in self._built.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
        self._built.clear()


# --- the process-wide services -------------------------------------------------------------
# Azure Functions calls trigger functions (change feed, timers, Service Bus) without the
# FastAPI app around them, so they reach the adapters through `services()`; `create_app`
# uses the same instance so HTTP and triggers share connections.

_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process's `Services`, built on first use from `get_settings()` (thread-safe)."""
    global _services
    current = _services
    if current is None:
        with _lock:
            if _services is None:
                _services = Services(get_settings())
            current = _services
    return current


def reset() -> None:
    """Close and forget the process's `Services` (tests; the next call builds anew)."""
    global _services
    with _lock:
        old, _services = _services, None
    if old is not None:
        old.close()
