"""Settings, errors, ids, clock, and the ports with their Azure and embedded adapters."""
