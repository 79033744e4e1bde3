"""`python -m cloudcart.ops.postprovision`: what azd's postprovision hook runs.

It makes the Azure AI Search index match the code's spec (`init_index` of the search
indexer), the same as `cloudcart search init`, but needs only what requirements.txt
installs: the hook
runs in whatever Python the deploying machine or CI has, and the local runtime (typer,
uvicorn, tantivy ...) is not part of the deployment's requirements. Standard library
`argparse` only, and no import of `cloudcart.local`.

The settings come from the environment as everywhere else; the hook scripts set
`CLOUDCART_SEARCH_ADAPTER=azure`, `SEARCH_ENDPOINT` and `SEARCH_INDEX_NAME` (and the Cosmos
DB endpoint the catalog is read from) from the provisioned outputs. Exit status 0 on
success, 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloudcart.composition import Services
from cloudcart.core.settings import Settings


def init_search_index(settings: Settings, *, reindex: bool = False) -> str:
    """Make the search index of `settings` match the spec (`reindex` refills it even when
    it is live already); what was done, in a sentence."""
    # Imported here: only the Azure adapter's module needs the Azure SDKs.
    from cloudcart.catalog.search.indexer import init_index

    services = Services(settings)
    try:
        return init_index(services, reindex=reindex)
    finally:
        services.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the postprovision steps; the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cloudcart.ops.postprovision",
        description="Make the Azure AI Search index match the code's spec.",
    )
    parser.add_argument(
        "--reindex",
        action="store_true",
        help="Refill the index from the catalog even when it is already live.",
    )
    args = parser.parse_args(argv)
    try:
        print(init_search_index(Settings(), reindex=args.reindex))
    except Exception as exc:
        # The hook's output is all an operator sees: name the failure, skip the traceback.
        print(f"search index not initialised: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
