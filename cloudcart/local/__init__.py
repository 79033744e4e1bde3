"""The embedded runtime: the `cloudcart` CLI, the local host, demo data, dev-only routes."""
