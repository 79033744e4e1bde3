"""The blobs port and its adapters (local folder, Azure Blob Storage)."""
