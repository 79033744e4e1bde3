"""Every container Cloudcart uses, declared once.

Adapters create containers from this list locally, and the Bicep checks compare it with
infra/bicep so code and infrastructure cannot drift apart.
"""

from __future__ import annotations

from cloudcart.core.ports.documents import ContainerSpec

DAY = 86_400

CONTAINERS: tuple[ContainerSpec, ...] = (
    ContainerSpec(
        "catalog",
        "/pk",
        -1,
        # Synthetic key: a product's partition is its id (product reads are point reads and
        # its outbox events share its partition); every category lives in "categories".
        "Products (pk = product id) and categories (pk = 'categories'), with outbox events.",
        outbox=True,
        # The storefront list (type, status, then its sort), carrying the fields it filters
        # on, so the embedded store reads a page instead of parsing the whole catalog.
        embedded_indexes=tuple(
            ("type", "status", sort, "categoryId", "brandKey")
            for sort in ("createdAt", "minPrice.amount", "sortTitle")
        ),
    ),
    ContainerSpec("inventory", "/sku", -1, "Stock levels and reservations per SKU.", outbox=True),
    ContainerSpec(
        "carts",
        "/customerId",
        30 * DAY,
        "Carts; abandoned ones expire. Signed-in carts carry `cart.updated` outbox events.",
        outbox=True,
    ),
    ContainerSpec(
        "orders",
        "/customerId",
        -1,
        "Orders, idempotency records and outbox events (events carry their own ttl).",
        outbox=True,
    ),
    ContainerSpec(
        "customers",
        "/customerId",
        -1,
        "Profiles, addresses, preferences and consent history.",
        outbox=True,
    ),
    ContainerSpec(
        "notifications",
        "/customerId",
        -1,
        "Notification records (one per event, template, channel and recipient), the in-app "
        "feed, verification codes and send limits (pk = customer id, `~ops` for alerts), and "
        "suppressed destinations (pk = `~sup:` + destination hash), with outbox events "
        "(`notification.status_changed`).",
        outbox=True,
    ),
    ContainerSpec(
        "sentmessages",
        "/to",
        7 * DAY,
        "What the local capture adapters would have sent, per address (embedded only).",
        embedded_only=True,
    ),
    ContainerSpec("events", "/customerId", 90 * DAY, "Browsing and analytics events, history."),
    ContainerSpec("insights", "/key", -1, "Recommendation neighbours and roll-ups.", outbox=True),
    ContainerSpec(
        "marketing",
        "/key",
        -1,
        "Marketing triggers: back-in-stock subscriptions (key `sku:<sku>`), each customer's "
        "subscriptions and reminder records (`cus:<customer id>`), recent viewers of a "
        "product (`views:<product id>`, with their own ttl).",
    ),
    ContainerSpec(
        "analytics",
        "/bucket",
        -1,
        "Analytics roll-ups: one partition per UTC day (`YYYY-MM-DD`: the day, its hours and "
        "processed markers) and `inventory` (stock-outs now and ended).",
    ),
    ContainerSpec(
        "analyticsfacts",
        "/bucket",
        7 * DAY,
        "The analytics facts journal (one document per fact, pk = its UTC day), folded into "
        "the roll-ups from its change feed.",
    ),
    ContainerSpec("processed", "/consumer", 14 * DAY, "Idempotent consumers' inbox records."),
    ContainerSpec("leases", "/id", None, "Change-feed leases and checkpoints."),
    ContainerSpec(
        "sessions", "/id", 1 * DAY, "Web sign-in sessions and pending sign-in flows (TTL)."
    ),
    ContainerSpec(
        "ledger",
        "/period",
        -1,
        "Journal entries and monthly running totals (pk = YYYY-MM), with outbox events.",
        outbox=True,
    ),
    ContainerSpec(
        "integrations", "/partner", -1, "Partner links' status (last success, last failure)."
    ),
    ContainerSpec("audit", "/actorId", 400 * DAY, "Audit trail of admin and privacy actions."),
    ContainerSpec(
        "risk",
        "/day",
        8 * DAY,
        "Fraud-rule counters and markers per UTC day (pk = YYYY-MM-DD): one document per "
        "customer, IP, shipping address and card seen that day; expire after 8 days.",
    ),
    ContainerSpec(
        "payments",
        "/paymentId",
        -1,
        "Test gateway payments and refunds (embedded only).",
        embedded_only=True,
    ),
)

_BY_NAME = {spec.name: spec for spec in CONTAINERS}


def container_spec(name: str) -> ContainerSpec:
    """The registered spec of a container; KeyError names the unknown container."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"container {name!r} is not in the registry") from None
