"""Operational functions: outbox relay and sweep, and other housekeeping triggers."""
