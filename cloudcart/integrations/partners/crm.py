"""The CRM connector: contacts, their marketing consent, their orders, their erasure.

It never trusts an event's payload for what the contact holds: on every event it reads
the customer's current profile, preferences and orders through their owners' public
functions and sends absolute values, so late or repeated events cannot put old data back,
and a customer erased meanwhile is never sent again.

- `customer.created|updated` upsert the contact. Marketing attributes (the addresses to
  market to) go only for channels with marketing consent; the rest of the contact is what
  the shop needs to serve the customer.
- `order.paid`, an order delivered or refunded (`order.status_changed`), `refund.issued`
  set the contact's order count, lifetime value and last order.
- `customer.erased` deletes the contact at the CRM and records the deletion as confirmed
  in the customer's data-processing record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cloudcart.core.events import Event
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.core.ports.partners import (
    Contact,
    CrmPartner,
    OrderStats,
    PartnerRejected,
)
from cloudcart.customers.service import CustomerService
from cloudcart.integrations.partners import links
from cloudcart.integrations.partners.connectors import Outcome, partner_call
from cloudcart.orders.service import list_orders
from cloudcart.orders.state import PAID_STATES

if TYPE_CHECKING:
    from cloudcart.composition import Services

MARKETING_CHANNELS = ("email", "sms", "whatsapp")
_ORDER_STATUS_EVENTS = ("delivered", "refunded")


def _customer_id(event: Event) -> str:
    found = event.data.get("customerId")
    if not isinstance(found, str) or not found:
        raise InvalidMessage("InvalidEvent", f"{event.type} without customerId")
    return found


def handle_crm_event(services: Services, event: Event) -> Outcome:
    """React to one event of the `crm` subscription."""
    if event.type in ("customer.created", "customer.updated"):
        action = _sync_contact
    elif event.type == "customer.erased":
        action = _erase
    elif event.type in ("order.paid", "refund.issued") or (
        event.type == "order.status_changed" and event.data.get("to") in _ORDER_STATUS_EVENTS
    ):
        action = _sync_orders
    else:
        return "ignored"
    partner = services.crm_partner
    if partner is None:
        return "disabled"
    customer_id = _customer_id(event)
    with partner_call(services, "crm"):
        outcome = action(services, partner, customer_id, event)
    return outcome


def contact_of(services: Services, customer_id: str) -> Contact | None:
    """The contact as the CRM should hold it now; None when the customer is erased."""
    customers = CustomerService(services.documents)
    if customers.is_erased(customer_id):
        return None
    profile: Mapping[str, Any] = customers.get_profile(customer_id) or {}
    consents: Mapping[str, Any] = customers.get_preferences(customer_id).get("consents", {})
    marketing = {
        channel: bool(consents.get(channel, {}).get("marketing", {}).get("granted"))
        for channel in MARKETING_CHANNELS
    }
    attributes: dict[str, Any] = {"locale": profile.get("locale")}
    if marketing["email"] and profile.get("email"):
        attributes["marketingEmail"] = profile["email"]
    if (marketing["sms"] or marketing["whatsapp"]) and profile.get("phone"):
        attributes["marketingPhone"] = profile["phone"]
    return Contact(
        customer_id=customer_id,
        email=profile.get("email"),
        name=profile.get("name"),
        phone=profile.get("phone"),
        marketing=marketing,
        attributes=attributes,
    )


def _sync_contact(
    services: Services, partner: CrmPartner, customer_id: str, event: Event
) -> Outcome:
    contact = contact_of(services, customer_id)
    if contact is None:
        return "skipped"
    partner.upsert_contact(contact, idempotency_key=f"crm-contact:{event.id}")
    links.record_processing(services.documents, "crm", customer_id)
    return "sent"


def order_stats(services: Services, customer_id: str) -> OrderStats:
    """The customer's paid orders: count, lifetime value (captured less refunded) and the
    latest one."""
    count = value = 0
    currency = last_id = last_at = last_status = None
    cursor: str | None = None
    while True:
        page, cursor = list_orders(
            services.documents, customer_id=customer_id, cursor=cursor, limit=100
        )
        for order in page:
            if order["status"] not in PAID_STATES and not order.get("capturedAmount"):
                continue
            count += 1
            value += int(order.get("capturedAmount", 0)) - int(order.get("refundedAmount", 0))
            currency = currency or order["totals"]["currency"]
            if last_at is None or str(order["createdAt"]) > last_at:
                last_id, last_at, last_status = (
                    order["id"],
                    str(order["createdAt"]),
                    order["status"],
                )
        if cursor is None:
            break
    return OrderStats(count, value, currency, last_id, last_at, last_status)


def _sync_orders(
    services: Services, partner: CrmPartner, customer_id: str, event: Event
) -> Outcome:
    contact = contact_of(services, customer_id)
    if contact is None:
        return "skipped"
    stats = order_stats(services, customer_id)
    key = f"crm-orders:{event.id}"
    try:
        partner.update_order_stats(customer_id, stats, idempotency_key=key)
    except PartnerRejected as exc:
        if exc.status != 404:
            raise
        # The CRM has no contact yet (the customer bought before any profile event
        # reached it): create it, then set the figures.
        partner.upsert_contact(contact, idempotency_key=f"crm-contact:{event.id}")
        partner.update_order_stats(customer_id, stats, idempotency_key=key)
    links.record_processing(services.documents, "crm", customer_id)
    return "sent"


def _erase(services: Services, partner: CrmPartner, customer_id: str, event: Event) -> Outcome:
    partner.delete_contact(customer_id, idempotency_key=f"crm-erase:{customer_id}")
    links.record_processing(services.documents, "crm", customer_id, erased=True)
    return "sent"
