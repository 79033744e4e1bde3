// Log Analytics and workspace-based Application Insights. Local (key) ingestion is off:
// the app sends telemetry with its managed identity (Monitoring Metrics Publisher).
param resourceToken string
param location string
param tags object

@description('Days Log Analytics keeps data (30 is included in the price).')
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output workspaceId string = workspace.id
output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
// The connection string carries the ingestion endpoint and instrumentation key, which is an
// identifier, not a credential, once local auth is disabled.
output appInsightsConnectionString string = appInsights.properties.ConnectionString
