"""Payments: the gateway port, the embedded test gateway, the Stripe adapter, the webhook route.

Business code imports the port (`cloudcart.core.ports.payments`) and reaches the
configured gateway through `Services.payments`; it never imports an adapter module.
"""
