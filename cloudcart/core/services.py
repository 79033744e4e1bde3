"""Builds each port's adapter from settings, once, on first use.

Adapter modules are imported lazily here so that a cold start pays only for the SDKs of
the adapters it actually uses (the Azure SDKs are heavy to import).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cloudcart.core.settings import Adapter, Settings

if TYPE_CHECKING:
    from cloudcart.catalog.search.port import SearchIndex
    from cloudcart.core.blobs.port import BlobStore
    from cloudcart.core.documents.port import DocumentStore
    from cloudcart.core.messages.port import MessagePublisher
    from cloudcart.identity.tokens import TokenValidator
    from cloudcart.integrations.partners.port import (
        AccountingPartner,
        CrmPartner,
        FulfilmentPartner,
        InventoryPartner,
    )
    from cloudcart.integrations.payments.port import PaymentGateway
    from cloudcart.notifications.channels import EmailChannel, TextChannel

T = TypeVar("T")

# Each gateway module exposes `from_settings(settings, services) -> PaymentGateway` (the test
# gateway keeps its payments in the documents port).
_PAYMENT_GATEWAYS = {
    "test": "cloudcart.integrations.payments.test_gateway",
    "stripe": "cloudcart.integrations.payments.stripe_gateway",
    "disabled": "cloudcart.integrations.payments.disabled",
}

# Each adapter module exposes `from_settings(settings) -> <port>`.
_ADAPTER_MODULES = {
    ("documents", Adapter.embedded): "cloudcart.core.documents.embedded",
    ("documents", Adapter.azure): "cloudcart.core.documents.cosmos",
    ("blobs", Adapter.embedded): "cloudcart.core.blobs.embedded",
    ("blobs", Adapter.azure): "cloudcart.core.blobs.azure",
    ("messages", Adapter.embedded): "cloudcart.core.messages.embedded",
    ("messages", Adapter.azure): "cloudcart.core.messages.servicebus",
    ("search", Adapter.embedded): "cloudcart.catalog.search.embedded",
    ("search", Adapter.azure): "cloudcart.catalog.search.azure",
}


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

    def _get(self, key: str, build: Any) -> Any:
        # Double-checked so concurrent first requests build an adapter once.
        if key not in self._built:
            with self._lock:
                if key not in self._built:
                    self._built[key] = build()
        return self._built[key]

    def _adapter(self, port: str, choice: Adapter) -> Any:
        module = import_module(_ADAPTER_MODULES[(port, choice)])
        return module.from_settings(self.settings)

    @property
    def documents(self) -> DocumentStore:
        """The documents port."""
        return cast(
            "DocumentStore",
            self._get(
                "documents", lambda: self._adapter("documents", self.settings.documents_adapter)
            ),
        )

    @property
    def blobs(self) -> BlobStore:
        """The blobs port."""
        return cast(
            "BlobStore",
            self._get("blobs", lambda: self._adapter("blobs", self.settings.blobs_adapter)),
        )

    @property
    def messages(self) -> MessagePublisher:
        """The messages port (publishing; the embedded broker also consumes)."""
        return cast(
            "MessagePublisher",
            self._get(
                "messages", lambda: self._adapter("messages", self.settings.messages_adapter)
            ),
        )

    @property
    def search(self) -> SearchIndex:
        """The search port (product search and suggestions)."""
        return cast(
            "SearchIndex",
            self._get("search", lambda: self._adapter("search", self.settings.search_adapter)),
        )

    @property
    def payments(self) -> PaymentGateway:
        """The payment gateway chosen by `CLOUDCART_PAYMENTS_PROVIDER`."""

        def build() -> Any:
            module = import_module(_PAYMENT_GATEWAYS[self.settings.payments_provider])
            return module.from_settings(self.settings, self)

        return cast("PaymentGateway", self._get("payments", build))

    @property
    def fulfilment_partner(self) -> FulfilmentPartner | None:
        """The fulfilment partner's API, or None when `FULFILMENT_PARTNER_URL` is unset."""

        def build() -> Any:
            module = import_module("cloudcart.integrations.partners.http")
            return module.fulfilment_partner_from_settings(self.settings)

        return cast("FulfilmentPartner | None", self._get("fulfilment_partner", build))

    @property
    def inventory_partner(self) -> InventoryPartner | None:
        """The WMS's API, or None when `INVENTORY_PARTNER_URL` is unset."""

        def build() -> Any:
            module = import_module("cloudcart.integrations.partners.http")
            return module.inventory_partner_from_settings(self.settings)

        return cast("InventoryPartner | None", self._get("inventory_partner", build))

    @property
    def accounting_partner(self) -> AccountingPartner | None:
        """The accounting system's API, or None when `ACCOUNTING_PARTNER_URL` is unset."""

        def build() -> Any:
            module = import_module("cloudcart.integrations.partners.http")
            return module.accounting_partner_from_settings(self.settings)

        return cast("AccountingPartner | None", self._get("accounting_partner", build))

    @property
    def crm_partner(self) -> CrmPartner | None:
        """The CRM's API, or None when `CRM_PARTNER_URL` is unset."""

        def build() -> Any:
            module = import_module("cloudcart.integrations.partners.http")
            return module.crm_partner_from_settings(self.settings)

        return cast("CrmPartner | None", self._get("crm_partner", build))

    @staticmethod
    def _configured(build: Any) -> Any:
        # A provider without its settings (ValueError from `from_settings`) refuses each
        # send as busy instead of failing every function that touches it.
        try:
            return build()
        except ValueError as missing:
            from cloudcart.notifications.channels import Unconfigured

            return Unconfigured(str(missing))

    @property
    def email_channel(self) -> EmailChannel:
        """Email: SendGrid, or the local capture adapter (`NOTIFICATIONS_EMAIL_PROVIDER`)."""

        def build() -> Any:
            if self.settings.notifications_email_provider == "sendgrid":
                return self._configured(
                    lambda: import_module(
                        "cloudcart.notifications.sendgrid_adapter"
                    ).SendGridEmail.from_settings(self.settings)
                )
            capture = import_module("cloudcart.notifications.capture")
            return capture.email_from_settings(self.settings, self)

        return cast("EmailChannel", self._get("email_channel", build))

    @property
    def text_channel(self) -> TextChannel:
        """SMS and WhatsApp: Twilio, or the local capture adapter
        (`NOTIFICATIONS_TEXT_PROVIDER`)."""

        def build() -> Any:
            if self.settings.notifications_text_provider == "twilio":
                return self._configured(
                    lambda: import_module(
                        "cloudcart.notifications.twilio_adapter"
                    ).TwilioText.from_settings(self.settings)
                )
            capture = import_module("cloudcart.notifications.capture")
            return capture.text_from_settings(self.settings, self)

        return cast("TextChannel", self._get("text_channel", build))

    @property
    def token_validator(self) -> TokenValidator:
        """Validates bearer tokens from the configured issuers."""

        def build() -> Any:
            return import_module("cloudcart.identity.tokens").from_settings(self.settings)

        return cast("TokenValidator", self._get("token_validator", build))

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
