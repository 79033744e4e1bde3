"""Partner connectors: the fulfilment centre and the warehouse management system (WMS).

Outbound, a connector per partner reacts to domain events on its own subscription of the
`events` topic and calls the partner's HTTP API through a port (`cloudcart.core.ports.partners`,
adapted by `http.py`); inbound, each partner sends versioned JSON messages (`messages.py`) to
its own Service Bus queue. `simulators` and `dev_routes` are the local stand-ins and their
dev-only routes.
"""
