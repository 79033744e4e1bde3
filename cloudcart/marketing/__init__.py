"""Marketing triggers: back in stock, abandoned cart and price drop, each sent through the
notifications area (`cloudcart.notifications.service.send_bulk`) at most once per rule.

The area owns the `marketing` container (docs/marketing.md); it learns about carts, orders,
stock, prices and views from their events, and never reads another area's storage.
"""
