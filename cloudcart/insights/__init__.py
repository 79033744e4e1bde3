"""Insights: storefront events, browsing history across devices, and recommendations
(also bought, order again, for you) kept from paid and imported orders.

Owns the `events` container (storefront events and history, per customer or visitor) and
the `insights` container (co-purchase neighbours, popularity, purchase profiles).
"""
