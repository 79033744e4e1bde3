#!/bin/sh
# azd postprovision hook: create or update the Azure AI Search index the app queries.
# The index schema lives in the code (cloudcart/catalog/search), so the code creates it;
# azd passes the provisioned outputs as environment variables. Runs as the signed-in user
# (roles.bicep grants them Search Service Contributor when AZURE_PRINCIPAL_ID is set).
# cloudcart.ops.postprovision needs only `pip install -r requirements.txt`, not the local
# runtime's extras (tests/infra/test_azd_hooks.py runs it with everything else blocked).
set -eu
PYTHON="${PYTHON:-python3}"
# A new index version is filled from the shop's catalog in Cosmos DB (cosmos.bicep gives the
# signed-in user its data role). azd always passes the endpoint; without one the catalog is
# the local default, and the init refuses to switch a live alias to an empty index.
if [ -n "${AZURE_COSMOS_ENDPOINT:-}" ]; then
  CLOUDCART_DOCUMENTS_ADAPTER=azure
  CosmosDB__accountEndpoint="$AZURE_COSMOS_ENDPOINT"
  export CLOUDCART_DOCUMENTS_ADAPTER CosmosDB__accountEndpoint
fi
CLOUDCART_SEARCH_ADAPTER=azure \
SEARCH_ENDPOINT="${AZURE_SEARCH_ENDPOINT:?azd did not pass AZURE_SEARCH_ENDPOINT}" \
SEARCH_INDEX_NAME="${AZURE_SEARCH_INDEX:-products}" \
  "$PYTHON" -m cloudcart.ops.postprovision
