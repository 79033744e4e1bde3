"""The ports: what business code may ask of storage, messaging, search, payments, partners
and notification channels, with the value types and errors that belong to each interface.

Every adapter implements one of these modules; business code imports only these, never an
adapter, and `cloudcart.composition` picks the adapter behind each port from settings.
"""
