"""Customers: profiles, addresses, notification preferences and consent, export and erasure."""
