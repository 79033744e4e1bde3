"""Orders: carts, checkout, stock reservations, orders and their state machine, payments'
effects on orders, returns, refunds, expiry and reconciliation. See docs/orders.md."""
