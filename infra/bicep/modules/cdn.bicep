// Optional Azure Front Door (Standard) in front of the private `media` blob container
// (main.bicep deploys it only when enableMediaCdn is true).
//
// The container stays private and the storage account keeps shared keys off: Front Door
// signs in to Blob Storage with its own user-assigned identity (origin authentication with
// managed identities), which may only read the media container. The endpoint URL maps to
// the container root, so `MEDIA_CDN_BASE_URL/{blob name}` is a product media URL.
param resourceToken string
param tags object

@description('Name of the storage account holding the media container.')
param storageAccountName string

@description('Blob endpoint of that account, e.g. `https://st123.blob.core.windows.net/`.')
param storageBlobEndpoint string

@description('The product media container (the CDN origin path).')
param mediaContainerName string

@description('Region of the Front Door identity (Front Door itself is global).')
param location string

// Storage Blob Data Reader: read-only, and scoped to the media container below.
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

// `https://st123.blob.core.windows.net/` -> `st123.blob.core.windows.net`
var blobHost = replace(replace(storageBlobEndpoint, 'https://', ''), '/', '')

// Media blob names never change content (`products/{id}/{mediaId}/original`, thumbnails
// next to it), so edges and browsers may keep them for a year without revalidating.
var mediaCacheDuration = '365.00:00:00'
var mediaCacheControl = 'public, max-age=31536000, immutable'

// Blob Storage accepts bearer tokens only from this service version on; Front Door does
// not send the header itself.
var blobServiceVersion = '2023-11-03'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource mediaContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: mediaContainerName
}

resource frontDoorIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-afd-media-${resourceToken}'
  location: location
  tags: tags
}

resource mediaReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(mediaContainer.id, frontDoorIdentity.id, storageBlobDataReader)
  scope: mediaContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: frontDoorIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource profile 'Microsoft.Cdn/profiles@2025-06-01' = {
  name: 'afd-cloudcart-${resourceToken}'
  location: 'global'
  tags: tags
  sku: { name: 'Standard_AzureFrontDoor' }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${frontDoorIdentity.id}': {} }
  }
  properties: { originResponseTimeoutSeconds: 60 }
}

resource endpoint 'Microsoft.Cdn/profiles/afdEndpoints@2025-06-01' = {
  parent: profile
  name: 'media-${resourceToken}'
  location: 'global'
  tags: tags
  properties: { enabledState: 'Enabled' }
}

resource originGroup 'Microsoft.Cdn/profiles/originGroups@2025-06-01' = {
  parent: profile
  name: 'media-blobs'
  properties: {
    loadBalancingSettings: {
      sampleSize: 4
      successfulSamplesRequired: 3
      additionalLatencyInMilliseconds: 50
    }
    // One origin: health probes would only add requests to the storage account.
    sessionAffinityState: 'Disabled'
    authentication: {
      type: 'UserAssignedIdentity'
      scope: 'https://storage.azure.com/.default'
      userAssignedIdentity: { id: frontDoorIdentity.id }
    }
  }
}

resource origin 'Microsoft.Cdn/profiles/originGroups/origins@2025-06-01' = {
  parent: originGroup
  name: 'media-storage'
  properties: {
    hostName: blobHost
    originHostHeader: blobHost
    httpsPort: 443
    httpPort: 80
    priority: 1
    weight: 1000
    enabledState: 'Enabled'
    enforceCertificateNameCheck: true
  }
}

resource ruleSet 'Microsoft.Cdn/profiles/ruleSets@2025-06-01' = {
  parent: profile
  name: 'mediarules'
}

resource immutableMedia 'Microsoft.Cdn/profiles/ruleSets/rules@2025-06-01' = {
  parent: ruleSet
  name: 'immutableMedia'
  properties: {
    order: 1
    conditions: []
    actions: [
      {
        name: 'ModifyRequestHeader'
        parameters: {
          typeName: 'DeliveryRuleHeaderActionParameters'
          headerAction: 'Overwrite'
          headerName: 'x-ms-version'
          value: blobServiceVersion
        }
      }
      {
        name: 'RouteConfigurationOverride'
        parameters: {
          typeName: 'DeliveryRuleRouteConfigurationOverrideActionParameters'
          cacheConfiguration: {
            cacheBehavior: 'OverrideAlways'
            cacheDuration: mediaCacheDuration
            queryStringCachingBehavior: 'IgnoreQueryString'
            isCompressionEnabled: 'Enabled'
          }
        }
      }
      {
        name: 'ModifyResponseHeader'
        parameters: {
          typeName: 'DeliveryRuleHeaderActionParameters'
          headerAction: 'Overwrite'
          headerName: 'Cache-Control'
          value: mediaCacheControl
        }
      }
    ]
    matchProcessingBehavior: 'Continue'
  }
}

resource route 'Microsoft.Cdn/profiles/afdEndpoints/routes@2025-06-01' = {
  parent: endpoint
  name: 'media'
  // The route goes live only once its origin, rules and read access exist (else 403s get cached).
  dependsOn: [origin, immutableMedia, mediaReader]
  properties: {
    originGroup: { id: originGroup.id }
    originPath: '/${mediaContainerName}'
    ruleSets: [{ id: ruleSet.id }]
    supportedProtocols: ['Https']
    patternsToMatch: ['/*']
    forwardingProtocol: 'HttpsOnly'
    httpsRedirect: 'Disabled'
    linkToDefaultDomain: 'Enabled'
    // The signed query strings of non-CDN URLs must not split the cache.
    cacheConfiguration: {
      queryStringCachingBehavior: 'IgnoreQueryString'
      compressionSettings: {
        isCompressionEnabled: true
        contentTypesToCompress: ['image/svg+xml', 'application/json', 'text/plain']
      }
    }
    enabledState: 'Enabled'
  }
}

@description('Base URL of the media CDN; `{endpointUrl}/{blob name}` serves a media blob.')
output endpointUrl string = 'https://${endpoint.properties.hostName}'
output profileName string = profile.name
output identityPrincipalId string = frontDoorIdentity.properties.principalId
