"""Settings, errors, ids, clock, events, the ports (`cloudcart.core.ports`) and their Azure
and embedded adapters. Imports no domain package (an import-linter contract)."""
