"""The search engines behind the search port (`cloudcart.core.ports.search`): the embedded
tantivy index and Azure AI Search, with what both must agree on (the index spec, text
analysis, ranking, cursors and the indexed document shape)."""
