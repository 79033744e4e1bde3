# azd postprovision hook (Windows): create or update the Azure AI Search index the app
# queries. Same steps as postprovision.sh; see the comments there.
$ErrorActionPreference = 'Stop'
if (-not $env:AZURE_SEARCH_ENDPOINT) { throw 'azd did not pass AZURE_SEARCH_ENDPOINT' }
$python = if ($env:PYTHON) { $env:PYTHON } else { 'python' }
$env:CLOUDCART_SEARCH_ADAPTER = 'azure'
$env:SEARCH_ENDPOINT = $env:AZURE_SEARCH_ENDPOINT
$env:SEARCH_INDEX_NAME = if ($env:AZURE_SEARCH_INDEX) { $env:AZURE_SEARCH_INDEX } else { 'products' }
if ($env:AZURE_COSMOS_ENDPOINT) {
  $env:CLOUDCART_DOCUMENTS_ADAPTER = 'azure'
  $env:CosmosDB__accountEndpoint = $env:AZURE_COSMOS_ENDPOINT
}
& $python -m cloudcart.ops.postprovision
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
