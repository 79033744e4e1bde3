"""Product search: the index specification, the search port and its embedded engine, the
intent-aware ranking, the indexer that keeps the index in step with the catalog, and the
public search routes."""
