"""Product search: the indexer that keeps the index in step with the catalog, and the public
search routes. The port is `cloudcart.core.ports.search`; the engines, with the index spec
and ranking they share, are in `cloudcart.core.search`."""
