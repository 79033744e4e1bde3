#!/bin/sh
# azd postprovision hook: create or update the Azure AI Search index the app queries.
# The index schema lives in the code (cloudcart/catalog/search), so the code creates it;
# azd passes the provisioned outputs as environment variables. Runs as the signed-in user
# (roles.bicep grants them Search Service Contributor when AZURE_PRINCIPAL_ID is set).
set -eu
PYTHON="${PYTHON:-python3}"
CLOUDCART_SEARCH_ADAPTER=azure \
SEARCH_ENDPOINT="${AZURE_SEARCH_ENDPOINT:?azd did not pass AZURE_SEARCH_ENDPOINT}" \
SEARCH_INDEX_NAME="${AZURE_SEARCH_INDEX:-products}" \
  "$PYTHON" -m cloudcart.local.cli search init
