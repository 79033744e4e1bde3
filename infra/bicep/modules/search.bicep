// Azure AI Search (basic). Entra ID and API keys are both accepted (aadOrApiKey) so the
// portal's index tools keep working; the app itself uses its identity only.
param name string
param location string
param tags object

@allowed(['free', 'basic', 'standard'])
param sku string = 'basic'

resource search 'Microsoft.Search/searchServices@2023-11-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: sku }
  properties: {
    replicaCount: 1
    partitionCount: 1
    hostingMode: 'default'
    publicNetworkAccess: 'enabled'
    authOptions: {
      aadOrApiKey: { aadAuthFailureMode: 'http401WithBearerChallenge' }
    }
  }
}

// Azure AI Search's DNS suffix in each cloud (`environment().suffixes` has none for Search).
// A cloud missing here fails the deployment instead of producing an endpoint that is wrong.
var searchDnsSuffixes = {
  AzureCloud: 'search.windows.net'
  AzureUSGovernment: 'search.azure.us'
  AzureChinaCloud: 'search.azure.cn'
}

output id string = search.id
output name string = search.name
output endpoint string = 'https://${search.name}.${searchDnsSuffixes[environment().name]}'
