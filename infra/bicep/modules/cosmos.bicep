// Cosmos DB for NoSQL: one database, every container of the code's registry
// (cloudcart/core/documents/registry.py; tests/infra checks the two lists are equal).
// Keys are disabled: the app reaches data with its identity (Built-in Data Contributor).
param name string
param location string
param tags object

@allowed(['serverless', 'autoscale'])
param throughputMode string

@description('Autoscale ceiling in RU/s, shared by every container (autoscale mode only).')
param autoscaleMaxThroughput int

param databaseName string = 'cloudcart'

@description('Principal id of the app identity (gets Cosmos DB Built-in Data Contributor).')
param appPrincipalId string

@description('Principal id of the deploying user (same role, for local debugging); empty skips.')
param userPrincipalId string = ''

// defaultTtl: null = no expiry, -1 = only documents with their own ttl expire, n = seconds.
// uniqueKeys: the registry's unique key paths, one key per path.
// compositeIndexes: the registry's composite indexes (Cosmos needs one per ORDER BY on 2+ fields).
var containers = [
  { name: 'catalog', partitionKeyPath: '/pk', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'inventory', partitionKeyPath: '/sku', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'carts', partitionKeyPath: '/customerId', defaultTtl: 2592000, uniqueKeys: [], compositeIndexes: [] }
  { name: 'orders', partitionKeyPath: '/customerId', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'customers', partitionKeyPath: '/customerId', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'notifications', partitionKeyPath: '/customerId', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'events', partitionKeyPath: '/customerId', defaultTtl: 7776000, uniqueKeys: [], compositeIndexes: [] }
  { name: 'insights', partitionKeyPath: '/key', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'marketing', partitionKeyPath: '/key', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'processed', partitionKeyPath: '/consumer', defaultTtl: 1209600, uniqueKeys: [], compositeIndexes: [] }
  { name: 'leases', partitionKeyPath: '/id', defaultTtl: null, uniqueKeys: [], compositeIndexes: [] }
  { name: 'ledger', partitionKeyPath: '/period', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'analytics', partitionKeyPath: '/bucket', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'analyticsfacts', partitionKeyPath: '/bucket', defaultTtl: 604800, uniqueKeys: [], compositeIndexes: [] }
  { name: 'integrations', partitionKeyPath: '/partner', defaultTtl: -1, uniqueKeys: [], compositeIndexes: [] }
  { name: 'audit', partitionKeyPath: '/actorId', defaultTtl: 34560000, uniqueKeys: [], compositeIndexes: [] }
  { name: 'sessions', partitionKeyPath: '/id', defaultTtl: 86400, uniqueKeys: [], compositeIndexes: [] }
  { name: 'risk', partitionKeyPath: '/day', defaultTtl: 691200, uniqueKeys: [], compositeIndexes: [] }
]

// Every path indexed, consistent (what the embedded adapter assumes); each container adds
// its composite indexes. cloudcart/core/documents/cosmos.py `indexing_policy` is the same.
var includedPaths = [{ path: '/*' }]
var excludedPaths = [{ path: '/"_etag"/?' }]

var serverless = throughputMode == 'serverless'
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    locations: [{ locationName: location, failoverPriority: 0, isZoneRedundant: false }]
    capabilities: serverless ? [{ name: 'EnableServerless' }] : []
    disableLocalAuth: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: { id: databaseName }
    // Autoscale throughput is shared at database level so small containers cost nothing extra.
    options: serverless ? {} : { autoscaleSettings: { maxThroughput: autoscaleMaxThroughput } }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for c in containers: {
    parent: database
    name: c.name
    properties: {
      resource: {
        id: c.name
        partitionKey: { paths: [c.partitionKeyPath], kind: 'Hash', version: 2 }
        defaultTtl: c.defaultTtl
        indexingPolicy: {
          indexingMode: 'consistent'
          automatic: true
          includedPaths: includedPaths
          excludedPaths: excludedPaths
          compositeIndexes: c.compositeIndexes
        }
        uniqueKeyPolicy: { uniqueKeys: c.uniqueKeys }
      }
    }
  }
]

resource appDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: account
  name: guid(account.id, appPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: appPrincipalId
    scope: account.id
  }
}

resource userDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (!empty(userPrincipalId)) {
  parent: account
  name: guid(account.id, userPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: userPrincipalId
    scope: account.id
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
