"""The documents port, its container registry and its adapters (SQLite, Cosmos DB)."""
