// Cloudcart on Azure: the whole system as one screen of module calls.
// `azd up` deploys it (azure.yaml at the repo root); tests/infra checks it against the code.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region of every resource.')
param location string

@description('Object id of the principal running azd (you, or the CI service principal); gets Key Vault Secrets Officer, data roles for local debugging and the search roles the postprovision hook needs. Empty skips it.')
param principalId string = ''

// A role assignment must name the principal's type: hard-coding `User` fails when CI deploys
// with a service principal. azd fills AZURE_PRINCIPAL_TYPE from its login (User or
// ServicePrincipal), see main.parameters.json.
@description('Type of `principalId`: `User` (azd auth login as yourself), `ServicePrincipal` (CI), or `Group`.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

// --- Functions hosting (Flex Consumption) ---------------------------------------------
@description('Always-ready instances of the `http` function group (0 = scale to zero, cold starts possible).')
@minValue(0)
param httpAlwaysReadyInstances int = 0

@description('Upper bound of Flex Consumption instances (caps cost and downstream load).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// Flex Consumption sends a Python app one HTTP request per instance unless told otherwise;
// the app is ASGI (async routes, a thread pool for blocking ones), so one instance serves
// many requests at once, and concurrent requests on one instance are billed once.
@description('HTTP requests one instance handles at once (Flex Consumption `perInstanceConcurrency`; the platform default for Python is 1). Default 16, the platform default of other languages on 2048 MB instances.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

// --- Cosmos DB ---------------------------------------------------------------------------
@description('`serverless` (pay per request, small shops) or `autoscale` (provisioned, shared by all containers). Choose before the first deploy: this template cannot move an existing account to the other mode, so changing it later fails the deployment (Cosmos DB can only migrate serverless to provisioned, one way, by hand; docs/deploy.md).')
@allowed(['serverless', 'autoscale'])
param cosmosThroughputMode string = 'serverless'

@description('Autoscale ceiling in RU/s when cosmosThroughputMode is autoscale (floor is 10%).')
@minValue(1000)
param cosmosAutoscaleMaxThroughput int = 1000

// --- identity (B2C / External ID are not created here, only trusted) ------------------
@description('Comma-separated OpenID metadata URLs of the trusted issuers (B2C policy and/or External ID tenant), all accepting identityAudience. Or use identityIssuers.')
param identityMetadataUrls string = ''

@description('Comma-separated accepted `aud` values for identityMetadataUrls: the API app registration application (client) id, which Entra v2.0 and B2C access tokens carry.')
param identityAudience string = ''

@description('JSON list of trusted issuers, each with its own audiences, optional scopePrefix and B2C policies (docs/identity.md). Replaces identityMetadataUrls/identityAudience.')
param identityIssuers string = ''

@description('Scope every customer token must carry.')
param identityRequiredScope string = 'shop.api'

@description('Claim holding roles: `roles` (External ID app roles) or a B2C custom attribute such as `extension_Role`.')
param identityRolesClaim string = 'roles'

@description('Role value that grants the admin API.')
param identityAdminRole string = 'Admin'

// --- web sign-in (MSAL, server-side sessions; docs/identity.md) -------------------------
@description('Client id of the web app registration used for the MSAL sign-in flow.')
param webAuthClientId string = ''

@description('MSAL authority: B2C `https://{tenant}.b2clogin.com/{tenant}.onmicrosoft.com/{policy}` or External ID `https://{tenant}.ciamlogin.com/{tenant}.onmicrosoft.com`.')
param webAuthAuthority string = ''

@description('Space-separated API scopes the web sign-in asks for (e.g. `api://cloudcart/shop.api`).')
param webAuthScopes string = ''

@description('Comma-separated origins allowed as `returnTo` after sign-in (the storefront sites).')
param webAllowedOrigins string = ''

@secure()
@description('Client secret of the web app registration (stored in Key Vault).')
param webAuthClientSecret string = ''

// --- operations -----------------------------------------------------------------------
@description('Email that receives alerts (dead letters, HTTP 5xx, Cosmos throttling). Empty: the action group has no receiver.')
param alertEmail string = ''

@description('Python log level of the app.')
@allowed(['DEBUG', 'INFO', 'WARNING', 'ERROR'])
param logLevel string = 'INFO'

// --- product media CDN (docs/deploy.md, "Media CDN") -----------------------------------
@description('Put Azure Front Door Standard in front of the private media container (signs in to storage with its own identity); its URL becomes MEDIA_CDN_BASE_URL.')
param enableMediaCdn bool = false

@description('Only when enableMediaCdn is false: a CDN URL you run yourself, mapped to the root of the media container. Empty: product media get signed read URLs.')
param mediaCdnBaseUrl string = ''

// --- partner connectors (docs/partners/onboarding.md) ----------------------------------
@description('Base URL of the fulfilment partner\'s API; empty leaves paid orders to the shop.')
param fulfilmentPartnerUrl string = ''
@description('OAuth2 token endpoint of the fulfilment partner (client-credentials grant).')
param fulfilmentPartnerTokenUrl string = ''
@description('OAuth2 client id for the fulfilment partner.')
param fulfilmentPartnerClientId string = ''
@description('OAuth2 scope for the fulfilment partner, if it needs one.')
param fulfilmentPartnerScope string = ''
@secure()
@description('API key of the fulfilment partner (stored in Key Vault).')
param fulfilmentPartnerApiKey string = ''
@secure()
@description('OAuth2 client secret for the fulfilment partner (stored in Key Vault).')
param fulfilmentPartnerClientSecret string = ''
@description('Base URL of the WMS API; empty turns the inventory connector off.')
param inventoryPartnerUrl string = ''
@description('OAuth2 token endpoint of the WMS.')
param inventoryPartnerTokenUrl string = ''
@description('OAuth2 client id for the WMS.')
param inventoryPartnerClientId string = ''
@description('OAuth2 scope for the WMS, if it needs one.')
param inventoryPartnerScope string = ''
@secure()
@description('API key of the WMS (stored in Key Vault).')
param inventoryPartnerApiKey string = ''
@secure()
@description('OAuth2 client secret for the WMS (stored in Key Vault).')
param inventoryPartnerClientSecret string = ''

@description('Base URL of the accounting system\'s API; empty turns the accounting connector off.')
param accountingPartnerUrl string = ''
@description('OAuth2 token endpoint of the accounting system.')
param accountingPartnerTokenUrl string = ''
@description('OAuth2 client id for the accounting system.')
param accountingPartnerClientId string = ''
@description('OAuth2 scope for the accounting system, if it needs one.')
param accountingPartnerScope string = ''
@secure()
@description('API key of the accounting system (stored in Key Vault).')
param accountingPartnerApiKey string = ''
@secure()
@description('OAuth2 client secret for the accounting system (stored in Key Vault).')
param accountingPartnerClientSecret string = ''
@description('Base URL of the CRM API; empty turns the CRM connector off.')
param crmPartnerUrl string = ''
@description('OAuth2 token endpoint of the CRM.')
param crmPartnerTokenUrl string = ''
@description('OAuth2 client id for the CRM.')
param crmPartnerClientId string = ''
@description('OAuth2 scope for the CRM, if it needs one.')
param crmPartnerScope string = ''
@secure()
@description('API key of the CRM (stored in Key Vault).')
param crmPartnerApiKey string = ''
@secure()
@description('OAuth2 client secret for the CRM (stored in Key Vault).')
param crmPartnerClientSecret string = ''
@description('Chart of accounts for the journal: JSON role -> account name (docs/accounting.md).')
param ledgerAccounts string = '{}'
@description('The currency of a trial balance when a request names none.')
param ledgerCurrency string = 'INR'

// --- public URL ---------------------------------------------------------------------------
@description('URL customers and webhook senders reach the app at, when not its default host name (a custom domain or Front Door in front of it). Twilio webhook signatures and sign-in redirects are checked against it. Empty: `https://<app default host name>`.')
param publicBaseUrl string = ''

// --- notifications: SendGrid email, Twilio SMS and WhatsApp (docs/notifications.md) -----
// The app always uses SendGrid and Twilio in Azure; these say who sends what. Empty
// strings mean unset: the app's defaults apply.
@description('Sender address of every email; must be a verified sender or on an authenticated domain in SendGrid.')
param notificationsFromEmail string = ''

@description('Sender name of every email, and the shop name in templates.')
param notificationsFromName string = 'Cloudcart'

@description('Where operational alerts (dead letters, stock shortfalls) are emailed by the app. Empty: none are emailed.')
param notificationsOpsEmail string = ''

@description('Window `HH:MM-HH:MM`, in the customer\'s time zone, in which marketing messages are held until it ends (transactional ones are not).')
param notificationsQuietHours string = '21:00-08:00'

@description('IANA time zone (e.g. `Asia/Kolkata`) for customers whose profile names none.')
param notificationsDefaultTimeZone string = 'UTC'

@description('SMS/WhatsApp messages per second one instance sends at most: the sender\'s Twilio throughput (1 per long code, 100 per short code, more through a Messaging Service). A decimal, as text.')
param notificationsTextPerSecond string = '30'

@description('Verification key of the signed SendGrid Event Webhook (base64 DER, Mail Settings > Event Webhook). A public key, not a secret. Empty: every event webhook is refused.')
param sendgridWebhookPublicKey string = ''

@description('JSON object: notification template -> SendGrid dynamic template id (`d-...`) for templates SendGrid renders instead of the app. `{}`: the app renders all.')
param sendgridTemplates string = '{}'

@description('SMS sender: an E.164 number or a Messaging Service SID (`MG...`).')
param twilioSmsFrom string = ''

@description('WhatsApp sender: an E.164 number without the `whatsapp:` prefix, or a Messaging Service SID (`MG...`).')
param twilioWhatsappFrom string = ''

@description('JSON object: notification template -> approved WhatsApp Content SID (`HX...`). A template without one is not sent on WhatsApp.')
param twilioWhatsappTemplates string = '{}'

// --- third-party secrets: stored in Key Vault, referenced from app settings -----------
@secure()
@description('SendGrid API key with Mail Send access (empty: set it later, see docs/deploy.md).')
param sendgridApiKey string = ''

@description('Twilio account SID `AC...` (an identifier, not a secret).')
param twilioAccountSid string = ''

@secure()
@description('Twilio auth token: authenticates API calls and signs Twilio webhooks (empty: set it later, see docs/deploy.md).')
param twilioAuthToken string = ''

@secure()
@description('Stripe secret API key.')
param stripeSecretKey string = ''

@secure()
@description('Stripe webhook signing secret.')
param stripeWebhookSecret string = ''

@description('Stripe publishable key (`pk_...`): the web pay page shows Stripe\'s Payment Element with it. Not a secret.')
param stripePublishableKey string = ''

@description('Payments in Azure: `stripe`, or `disabled` (checkout answers 503 `payments-disabled`). Empty: `stripe` when both Stripe secrets are given as parameters, else `disabled`. Set `stripe` once the secrets are in Key Vault (docs/deploy.md).')
@allowed(['', 'disabled', 'stripe'])
param paymentsProvider string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
// Stripe only once its secrets can exist: before that the Key Vault references do not
// resolve and checkout would send their literal text to Stripe as the API key.
var effectivePaymentsProvider = !empty(paymentsProvider) ? paymentsProvider : (!empty(stripeSecretKey) && !empty(stripeWebhookSecret) ? 'stripe' : 'disabled')
var tags = { 'azd-env-name': environmentName, app: 'cloudcart' }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: { name: 'id-cloudcart-${resourceToken}', location: location, tags: tags }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: { resourceToken: resourceToken, location: location, tags: tags }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: { name: 'st${resourceToken}', location: location, tags: tags }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: 'cosmos-${resourceToken}'
    location: location
    tags: tags
    throughputMode: cosmosThroughputMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: { name: 'sb-${resourceToken}', location: location, tags: tags }
}

module search 'modules/search.bicep' = {
  name: 'search'
  scope: rg
  params: { name: 'srch-${resourceToken}', location: location, tags: tags }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    sendgridApiKey: sendgridApiKey
    twilioAuthToken: twilioAuthToken
    stripeSecretKey: stripeSecretKey
    stripeWebhookSecret: stripeWebhookSecret
    webAuthClientSecret: webAuthClientSecret
    fulfilmentPartnerApiKey: fulfilmentPartnerApiKey
    fulfilmentPartnerClientSecret: fulfilmentPartnerClientSecret
    inventoryPartnerApiKey: inventoryPartnerApiKey
    inventoryPartnerClientSecret: inventoryPartnerClientSecret
    accountingPartnerApiKey: accountingPartnerApiKey
    accountingPartnerClientSecret: accountingPartnerClientSecret
    crmPartnerApiKey: crmPartnerApiKey
    crmPartnerClientSecret: crmPartnerClientSecret
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    storageAccountName: storage.outputs.name
    serviceBusName: serviceBus.outputs.name
    searchName: search.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // Role assignments first: the host reaches its storage with the identity at startup.
  dependsOn: [roles]
  params: {
    name: 'func-cloudcart-${resourceToken}'
    planName: 'plan-cloudcart-${resourceToken}'
    location: location
    tags: tags
    environmentName: environmentName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    searchEndpoint: search.outputs.endpoint
    keyVaultReferences: keyVault.outputs.appSettingReferences
    publicBaseUrl: publicBaseUrl
    notificationsFromEmail: notificationsFromEmail
    notificationsFromName: notificationsFromName
    notificationsOpsEmail: notificationsOpsEmail
    notificationsQuietHours: notificationsQuietHours
    notificationsDefaultTimeZone: notificationsDefaultTimeZone
    notificationsTextPerSecond: notificationsTextPerSecond
    sendgridWebhookPublicKey: sendgridWebhookPublicKey
    sendgridTemplates: sendgridTemplates
    twilioAccountSid: twilioAccountSid
    twilioSmsFrom: twilioSmsFrom
    twilioWhatsappFrom: twilioWhatsappFrom
    twilioWhatsappTemplates: twilioWhatsappTemplates
    httpAlwaysReadyInstances: httpAlwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    logLevel: logLevel
    paymentsProvider: effectivePaymentsProvider
    stripePublishableKey: stripePublishableKey
    mediaCdnBaseUrl: enableMediaCdn ? mediaCdn.outputs.endpointUrl : mediaCdnBaseUrl
    identityMetadataUrls: identityMetadataUrls
    identityAudience: identityAudience
    identityIssuers: identityIssuers
    identityRequiredScope: identityRequiredScope
    identityRolesClaim: identityRolesClaim
    identityAdminRole: identityAdminRole
    webAuthClientId: webAuthClientId
    webAuthAuthority: webAuthAuthority
    webAuthScopes: webAuthScopes
    webAllowedOrigins: webAllowedOrigins
    partners: {
      fulfilment: {
        url: fulfilmentPartnerUrl
        tokenUrl: fulfilmentPartnerTokenUrl
        clientId: fulfilmentPartnerClientId
        scope: fulfilmentPartnerScope
      }
      inventory: {
        url: inventoryPartnerUrl
        tokenUrl: inventoryPartnerTokenUrl
        clientId: inventoryPartnerClientId
        scope: inventoryPartnerScope
      }
      accounting: {
        url: accountingPartnerUrl
        tokenUrl: accountingPartnerTokenUrl
        clientId: accountingPartnerClientId
        scope: accountingPartnerScope
      }
      crm: {
        url: crmPartnerUrl
        tokenUrl: crmPartnerTokenUrl
        clientId: crmPartnerClientId
        scope: crmPartnerScope
      }
    }
    ledgerAccounts: ledgerAccounts
    ledgerCurrency: ledgerCurrency
  }
}

module mediaCdn 'modules/cdn.bicep' = if (enableMediaCdn) {
  name: 'cdn'
  scope: rg
  params: {
    resourceToken: resourceToken
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    mediaContainerName: storage.outputs.mediaContainerName
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    resourceToken: resourceToken
    tags: tags
    alertEmail: alertEmail
    serviceBusNamespaceId: serviceBus.outputs.id
    functionAppId: functionApp.outputs.id
    cosmosAccountId: cosmos.outputs.id
  }
}

output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output CLOUDCART_API_URL string = functionApp.outputs.url
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output AZURE_SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output AZURE_SEARCH_ENDPOINT string = search.outputs.endpoint
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output MEDIA_CDN_BASE_URL string = enableMediaCdn ? mediaCdn.outputs.endpointUrl : mediaCdnBaseUrl
output AZURE_SEARCH_INDEX string = functionApp.outputs.searchIndexName
