"""The HTTP API: one FastAPI app under /api, its error model and shared dependencies."""
