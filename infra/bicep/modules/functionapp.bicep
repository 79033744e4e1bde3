// The Function app on Flex Consumption (FC1, Linux, Python 3.11) running as the user-assigned
// identity. App settings hold identity-based connections only; third-party secrets arrive as
// Key Vault references. tests/infra checks these settings against Settings.env_names().
param name string
param planName string
param location string
param tags object
param environmentName string

param identityId string
param identityClientId string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param cosmosEndpoint string
param cosmosDatabaseName string
param serviceBusFullyQualifiedNamespace string
param searchEndpoint string

@description('App setting name -> `@Microsoft.KeyVault(SecretUri=...)` (keyvault.bicep output).')
param keyVaultReferences object
@description('URL the app is reached at from outside (custom domain, Front Door); empty: the app\'s default host name. Twilio webhook signatures are checked against it.')
param publicBaseUrl string = ''

// Notifications (docs/notifications.md). Empty strings mean unset: the app's defaults apply.
@description('Sender address of every email: a verified sender or domain in SendGrid.')
param notificationsFromEmail string = ''
@description('Sender name of every email, and the shop name in templates.')
param notificationsFromName string = 'Cloudcart'
@description('Where operational alerts are emailed; empty sends none.')
param notificationsOpsEmail string = ''
@description('`HH:MM-HH:MM` in the customer\'s time zone in which marketing messages are held.')
param notificationsQuietHours string = '21:00-08:00'
@description('IANA time zone for customers whose profile names none.')
param notificationsDefaultTimeZone string = 'UTC'
@description('SMS/WhatsApp messages per second one instance sends at most (the sender\'s Twilio throughput).')
param notificationsTextPerSecond string = '30'
@description('Verification key of the signed SendGrid Event Webhook (base64 DER); empty refuses every event webhook.')
param sendgridWebhookPublicKey string = ''
@description('JSON object: notification template -> SendGrid dynamic template id.')
param sendgridTemplates string = '{}'
param twilioAccountSid string
@description('SMS sender: an E.164 number or a Messaging Service SID (`MG...`).')
param twilioSmsFrom string = ''
@description('WhatsApp sender: an E.164 number (no `whatsapp:` prefix) or a Messaging Service SID.')
param twilioWhatsappFrom string = ''
@description('JSON object: notification template -> approved WhatsApp Content SID (`HX...`).')
param twilioWhatsappTemplates string = '{}'

param httpAlwaysReadyInstances int
param maximumInstanceCount int
param instanceMemoryMB int
@description('HTTP requests one instance handles at once (Flex Consumption `perInstanceConcurrency`).')
param httpPerInstanceConcurrency int
param logLevel string
@description('`stripe` or `disabled`. Never `test`: the embedded test gateway must not take payments in Azure.')
@allowed(['disabled', 'stripe'])
param paymentsProvider string
@description('Stripe publishable key (`pk_...`, not a secret) for the web pay page\'s Payment Element.')
param stripePublishableKey string = ''
@description('CDN URL of the media container root; empty means signed read URLs.')
param mediaCdnBaseUrl string = ''

param identityMetadataUrls string
param identityAudience string
@description('JSON list of trusted issuers (docs/identity.md); empty when identityMetadataUrls is used.')
param identityIssuers string
param identityRequiredScope string
param identityRolesClaim string
param identityAdminRole string
param webAuthClientId string
param webAuthAuthority string
param webAuthScopes string
param webAllowedOrigins string

@description('Partner APIs: `{ fulfilment: { url, tokenUrl, clientId, scope }, inventory: {...}, accounting: {...}, crm: {...} }`; an empty url turns that connector off.')
param partners object
@description('Chart of accounts (JSON role -> account name); `{}` keeps the defaults.')
param ledgerAccounts string = '{}'
@description('The currency of a trial balance when a request names none.')
param ledgerCurrency string = 'INR'


// Settings' default index name; the postprovision hook creates the index under this name.
var searchIndexName = 'products'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the app to deploy the `api` service to by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references are resolved with the app identity, not a system identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        alwaysReady: [{ name: 'http', instanceCount: httpAlwaysReadyInstances }]
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // Without it a Python app gets one HTTP request per instance (the platform default).
        triggers: { http: { perInstanceConcurrency: httpPerInstanceConcurrency } }
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    // Functions host storage, reached with the app identity (no AzureWebJobsStorage string).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
    AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
    AzureWebJobsStorage__tableServiceUri: storageTableEndpoint

    // DefaultAzureCredential in the app picks the user-assigned identity by this id.
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
    // With host.json's `telemetryMode: OpenTelemetry`: the worker's logs and spans go out
    // through the app's own Azure Monitor exporter (cloudcart/api/logging.py, Entra auth)
    // and the host stops forwarding them too, so nothing is sent twice. Not
    // PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: that makes the worker configure a second
    // exporter of its own, without the app's credential.
    PYTHON_ENABLE_OPENTELEMETRY: 'true'

    CLOUDCART_ENVIRONMENT: environmentName
    // Webhook signatures (Twilio) and sign-in redirects are checked against this URL.
    CLOUDCART_PUBLIC_BASE_URL: !empty(publicBaseUrl) ? publicBaseUrl : 'https://${site.properties.defaultHostName}'
    CLOUDCART_LOG_LEVEL: logLevel

    CLOUDCART_DOCUMENTS_ADAPTER: 'azure'
    CosmosDB__accountEndpoint: cosmosEndpoint
    CosmosDB__credential: 'managedidentity'
    CosmosDB__clientId: identityClientId
    COSMOS_DATABASE: cosmosDatabaseName

    CLOUDCART_BLOBS_ADAPTER: 'azure'
    Storage__blobServiceUri: storageBlobEndpoint
    Storage__credential: 'managedidentity'
    Storage__clientId: identityClientId
    // Empty is unset: the app then signs read URLs for product media.
    MEDIA_CDN_BASE_URL: mediaCdnBaseUrl

    CLOUDCART_MESSAGES_ADAPTER: 'azure'
    ServiceBus__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
    ServiceBus__credential: 'managedidentity'
    ServiceBus__clientId: identityClientId
    EVENTS_TOPIC: 'events'
    OPS_TOPIC: 'ops'
    OUTBOX_SWEEP_SCHEDULE: '0 */1 * * * *'
    PAYMENT_WINDOW_MINUTES: '30.0'
    ORDER_EXPIRY_SCHEDULE: '0 */1 * * * *'
    RETURN_WINDOW_DAYS: '30'
    ORDER_TAX_RULES: '{"IN": {"rate": 18, "inclusive": true}}'
    ORDER_SHIPPING_RATES: '{"standard": 0, "express": 9900}'

    // Partner connectors (docs/partners/). The queue names are the topology's; the
    // inbound triggers bind to them through these settings.
    FULFILMENT_UPDATES_QUEUE: 'fulfilment-updates'
    INVENTORY_UPDATES_QUEUE: 'inventory-updates'
    // Marketing triggers (docs/marketing.md): the reminders queue is the topology's.
    ABANDONED_CART_MINUTES: '60'
    MARKETING_REMINDERS_QUEUE: 'marketing-reminders'
    FULFILMENT_PARTNER_URL: partners.fulfilment.url
    FULFILMENT_PARTNER_TOKEN_URL: partners.fulfilment.tokenUrl
    FULFILMENT_PARTNER_CLIENT_ID: partners.fulfilment.clientId
    FULFILMENT_PARTNER_SCOPE: partners.fulfilment.scope
    FULFILMENT_PARTNER_API_KEY: keyVaultReferences.FULFILMENT_PARTNER_API_KEY
    FULFILMENT_PARTNER_CLIENT_SECRET: keyVaultReferences.FULFILMENT_PARTNER_CLIENT_SECRET
    INVENTORY_PARTNER_URL: partners.inventory.url
    INVENTORY_PARTNER_TOKEN_URL: partners.inventory.tokenUrl
    INVENTORY_PARTNER_CLIENT_ID: partners.inventory.clientId
    INVENTORY_PARTNER_SCOPE: partners.inventory.scope
    INVENTORY_PARTNER_API_KEY: keyVaultReferences.INVENTORY_PARTNER_API_KEY
    INVENTORY_PARTNER_CLIENT_SECRET: keyVaultReferences.INVENTORY_PARTNER_CLIENT_SECRET
    ACCOUNTING_PARTNER_URL: partners.accounting.url
    ACCOUNTING_PARTNER_TOKEN_URL: partners.accounting.tokenUrl
    ACCOUNTING_PARTNER_CLIENT_ID: partners.accounting.clientId
    ACCOUNTING_PARTNER_SCOPE: partners.accounting.scope
    ACCOUNTING_PARTNER_API_KEY: keyVaultReferences.ACCOUNTING_PARTNER_API_KEY
    ACCOUNTING_PARTNER_CLIENT_SECRET: keyVaultReferences.ACCOUNTING_PARTNER_CLIENT_SECRET
    CRM_PARTNER_URL: partners.crm.url
    CRM_PARTNER_TOKEN_URL: partners.crm.tokenUrl
    CRM_PARTNER_CLIENT_ID: partners.crm.clientId
    CRM_PARTNER_SCOPE: partners.crm.scope
    CRM_PARTNER_API_KEY: keyVaultReferences.CRM_PARTNER_API_KEY
    CRM_PARTNER_CLIENT_SECRET: keyVaultReferences.CRM_PARTNER_CLIENT_SECRET

    // The journal (docs/accounting.md): the chart of accounts and the default currency.
    LEDGER_ACCOUNTS: ledgerAccounts
    LEDGER_CURRENCY: ledgerCurrency

    CLOUDCART_SEARCH_ADAPTER: 'azure'
    SEARCH_ENDPOINT: searchEndpoint
    SEARCH_INDEX_NAME: searchIndexName

    CLOUDCART_IDENTITY_ADAPTER: 'azure'
    IDENTITY_METADATA_URLS: identityMetadataUrls
    IDENTITY_AUDIENCE: identityAudience
    IDENTITY_ISSUERS: identityIssuers
    IDENTITY_REQUIRED_SCOPE: identityRequiredScope
    IDENTITY_ROLES_CLAIM: identityRolesClaim
    IDENTITY_ADMIN_ROLE: identityAdminRole
    WEB_AUTH_CLIENT_ID: webAuthClientId
    WEB_AUTH_CLIENT_SECRET: keyVaultReferences.WEB_AUTH_CLIENT_SECRET
    WEB_AUTH_AUTHORITY: webAuthAuthority
    WEB_AUTH_SCOPES: webAuthScopes
    WEB_ALLOWED_ORIGINS: webAllowedOrigins

    // Notifications (docs/notifications.md): SendGrid email, Twilio SMS and WhatsApp. Never
    // `capture`: the app refuses the local capture providers under the Functions host.
    // The timer schedule is a literal: the trigger binds to it as %NOTIFICATIONS_SCHEDULE%.
    NOTIFICATIONS_EMAIL_PROVIDER: 'sendgrid'
    NOTIFICATIONS_TEXT_PROVIDER: 'twilio'
    NOTIFICATIONS_FROM_EMAIL: notificationsFromEmail
    NOTIFICATIONS_FROM_NAME: notificationsFromName
    NOTIFICATIONS_OPS_EMAIL: notificationsOpsEmail
    NOTIFICATIONS_QUIET_HOURS: notificationsQuietHours
    NOTIFICATIONS_DEFAULT_TIME_ZONE: notificationsDefaultTimeZone
    NOTIFICATIONS_TEXT_PER_SECOND: notificationsTextPerSecond
    NOTIFICATIONS_SCHEDULE: '0 */1 * * * *'
    SENDGRID_API_KEY: keyVaultReferences.SENDGRID_API_KEY
    SENDGRID_WEBHOOK_PUBLIC_KEY: sendgridWebhookPublicKey
    SENDGRID_TEMPLATES: sendgridTemplates
    TWILIO_ACCOUNT_SID: twilioAccountSid
    TWILIO_AUTH_TOKEN: keyVaultReferences.TWILIO_AUTH_TOKEN
    TWILIO_SMS_FROM: twilioSmsFrom
    TWILIO_WHATSAPP_FROM: twilioWhatsappFrom
    TWILIO_WHATSAPP_TEMPLATES: twilioWhatsappTemplates

    // `disabled` until the Stripe secrets exist (main.bicep `paymentsProvider`); the
    // embedded test gateway must never take payments in Azure.
    CLOUDCART_PAYMENTS_PROVIDER: paymentsProvider
    STRIPE_SECRET_KEY: keyVaultReferences.STRIPE_SECRET_KEY
    STRIPE_WEBHOOK_SECRET: keyVaultReferences.STRIPE_WEBHOOK_SECRET
    STRIPE_PUBLISHABLE_KEY: stripePublishableKey
  }
}

output id string = site.id
output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
@description('The search index the app queries (the azd postprovision hook creates it).')
output searchIndexName string = searchIndexName
