// Key Vault (RBAC) for third-party secrets. The app reads them through Key Vault
// references in its app settings, resolved by the platform with the app identity.
param name string
param location string
param tags object

@secure()
param sendgridApiKey string
@secure()
param twilioAuthToken string
@secure()
param stripeSecretKey string
@secure()
param stripeWebhookSecret string
@secure()
param webAuthClientSecret string

@secure()
param fulfilmentPartnerApiKey string = ''
@secure()
param fulfilmentPartnerClientSecret string = ''
@secure()
param inventoryPartnerApiKey string = ''
@secure()
param inventoryPartnerClientSecret string = ''
@secure()
param accountingPartnerApiKey string = ''
@secure()
param accountingPartnerClientSecret string = ''
@secure()
param crmPartnerApiKey string = ''
@secure()
param crmPartnerClientSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

// A secret is written only when its parameter is given, so `azd provision` without it never
// overwrites a value an operator set in the vault directly (docs/deploy.md).
resource sendgridApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(sendgridApiKey)) {
  parent: vault
  name: 'sendgrid-api-key'
  properties: { value: sendgridApiKey, contentType: 'text/plain' }
}

resource twilioAuthTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(twilioAuthToken)) {
  parent: vault
  name: 'twilio-auth-token'
  properties: { value: twilioAuthToken, contentType: 'text/plain' }
}

resource stripeSecretKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(stripeSecretKey)) {
  parent: vault
  name: 'stripe-secret-key'
  properties: { value: stripeSecretKey, contentType: 'text/plain' }
}

resource stripeWebhookSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(stripeWebhookSecret)) {
  parent: vault
  name: 'stripe-webhook-secret'
  properties: { value: stripeWebhookSecret, contentType: 'text/plain' }
}

resource webAuthClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(webAuthClientSecret)) {
  parent: vault
  name: 'web-auth-client-secret'
  properties: { value: webAuthClientSecret, contentType: 'text/plain' }
}

// Partner credentials: written only when given. A reference to a secret that is not
// there reaches the app as the literal reference, which the partner adapters treat as
// unset (and log), so provisioning without partners never breaks the app.
var partnerSecrets = [
  { setting: 'FULFILMENT_PARTNER_API_KEY', name: 'fulfilment-partner-api-key', value: fulfilmentPartnerApiKey }
  { setting: 'FULFILMENT_PARTNER_CLIENT_SECRET', name: 'fulfilment-partner-client-secret', value: fulfilmentPartnerClientSecret }
  { setting: 'INVENTORY_PARTNER_API_KEY', name: 'inventory-partner-api-key', value: inventoryPartnerApiKey }
  { setting: 'INVENTORY_PARTNER_CLIENT_SECRET', name: 'inventory-partner-client-secret', value: inventoryPartnerClientSecret }
  { setting: 'ACCOUNTING_PARTNER_API_KEY', name: 'accounting-partner-api-key', value: accountingPartnerApiKey }
  { setting: 'ACCOUNTING_PARTNER_CLIENT_SECRET', name: 'accounting-partner-client-secret', value: accountingPartnerClientSecret }
  { setting: 'CRM_PARTNER_API_KEY', name: 'crm-partner-api-key', value: crmPartnerApiKey }
  { setting: 'CRM_PARTNER_CLIENT_SECRET', name: 'crm-partner-client-secret', value: crmPartnerClientSecret }
]

resource partnerSecretResources 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for p in partnerSecrets: if (!empty(p.value)) {
    parent: vault
    name: p.name
    properties: { value: p.value, contentType: 'text/plain' }
  }
]

// Versionless references: a new secret version is picked up without a redeploy.
var secretsUri = '${vault.properties.vaultUri}secrets'

output id string = vault.id
output name string = vault.name
output appSettingReferences object = {
  SENDGRID_API_KEY: '@Microsoft.KeyVault(SecretUri=${secretsUri}/sendgrid-api-key/)'
  TWILIO_AUTH_TOKEN: '@Microsoft.KeyVault(SecretUri=${secretsUri}/twilio-auth-token/)'
  STRIPE_SECRET_KEY: '@Microsoft.KeyVault(SecretUri=${secretsUri}/stripe-secret-key/)'
  STRIPE_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${secretsUri}/stripe-webhook-secret/)'
  WEB_AUTH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretsUri}/web-auth-client-secret/)'
  FULFILMENT_PARTNER_API_KEY: '@Microsoft.KeyVault(SecretUri=${secretsUri}/fulfilment-partner-api-key/)'
  FULFILMENT_PARTNER_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretsUri}/fulfilment-partner-client-secret/)'
  INVENTORY_PARTNER_API_KEY: '@Microsoft.KeyVault(SecretUri=${secretsUri}/inventory-partner-api-key/)'
  INVENTORY_PARTNER_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretsUri}/inventory-partner-client-secret/)'
  ACCOUNTING_PARTNER_API_KEY: '@Microsoft.KeyVault(SecretUri=${secretsUri}/accounting-partner-api-key/)'
  ACCOUNTING_PARTNER_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretsUri}/accounting-partner-client-secret/)'
  CRM_PARTNER_API_KEY: '@Microsoft.KeyVault(SecretUri=${secretsUri}/crm-partner-api-key/)'
  CRM_PARTNER_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretsUri}/crm-partner-client-secret/)'
}
