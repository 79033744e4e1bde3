"""The one place Cloudcart reads its configuration from.

Every field maps to one environment variable (an app setting on Azure, a `Values` entry in
`local.settings.json` for `func start`). With no settings at all every port uses its
embedded adapter, so a new user runs the whole shop without a cloud account.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Adapter(StrEnum):
    """Which implementation backs a port."""

    embedded = "embedded"
    azure = "azure"


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable name (case-insensitive)."""
    return AliasChoices(name)


class Settings(BaseSettings):
    """Cloudcart settings. The environment variable of each field is its alias."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        # `local.settings.json` lists every setting, the cloud-only ones empty: empty means unset.
        env_ignore_empty=True,
    )

    # --- general -----------------------------------------------------------------------
    environment: str = Field(
        "local",
        validation_alias=_env("CLOUDCART_ENVIRONMENT"),
        description="Name of this deployment (local, dev, prod); shown in logs and /api/ready.",
    )
    data_dir: Path = Field(
        Path(".data"),
        validation_alias=_env("CLOUDCART_DATA_DIR"),
        description="Folder of the embedded adapters: SQLite files, blobs, the dev signing keys.",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:7071",
        validation_alias=_env("CLOUDCART_PUBLIC_BASE_URL"),
        description="Base URL clients reach this app at; used for signed blob URLs and the dev "
        "identity provider's issuer.",
    )
    log_level: str = Field(
        "INFO",
        validation_alias=_env("CLOUDCART_LOG_LEVEL"),
        description="Python log level for the app's structured JSON logs.",
    )
    allow_dev_providers: bool = Field(
        False,
        validation_alias=_env("CLOUDCART_ALLOW_DEV_PROVIDERS"),
        description="`true` lets the app start under the Functions host (`func start`) with the "
        "embedded identity provider or the `test` payments provider; without it such an app "
        "refuses to start. Local `func start` only; never set it in Azure.",
    )
    applicationinsights_connection_string: SecretStr | None = Field(
        None,
        validation_alias=_env("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        description="When set, traces, logs and metrics go to Application Insights via "
        "OpenTelemetry (the connection string holds no secret key; ingestion uses Entra auth).",
    )

    # --- documents port ----------------------------------------------------------------
    documents_adapter: Adapter = Field(
        Adapter.embedded,
        validation_alias=_env("CLOUDCART_DOCUMENTS_ADAPTER"),
        description="`embedded` (SQLite in the data folder) or `azure` (Cosmos DB for NoSQL).",
    )
    cosmos_endpoint: str | None = Field(
        None,
        validation_alias=_env("CosmosDB__accountEndpoint"),
        description="Cosmos DB account endpoint; the same setting the change-feed trigger's "
        "identity-based connection reads.",
    )
    cosmos_database: str = Field(
        "cloudcart",
        validation_alias=_env("COSMOS_DATABASE"),
        description="Cosmos DB database that holds every container of the registry.",
    )
    cosmos_key: SecretStr | None = Field(
        None,
        validation_alias=_env("COSMOS_KEY"),
        description="Account key, only for the Cosmos emulator; production uses the app's "
        "managed identity.",
    )

    # --- blobs port --------------------------------------------------------------------
    blobs_adapter: Adapter = Field(
        Adapter.embedded,
        validation_alias=_env("CLOUDCART_BLOBS_ADAPTER"),
        description="`embedded` (a local folder served by the dev host) or `azure` (Blob Storage).",
    )
    blob_account_url: str | None = Field(
        None,
        validation_alias=_env("Storage__blobServiceUri"),
        description="Blob service URL of the storage account (https://<account>.blob.core."
        "windows.net); reached with the app's managed identity.",
    )
    blob_connection_string: SecretStr | None = Field(
        None,
        validation_alias=_env("BLOB_CONNECTION_STRING"),
        description="Connection string with an account key, only for Azurite.",
    )
    blob_signing_key: SecretStr | None = Field(
        None,
        validation_alias=_env("CLOUDCART_BLOB_SIGNING_KEY"),
        description="HMAC key for the embedded adapter's signed URLs; generated into the data "
        "folder on first run when unset.",
    )
    media_cdn_base_url: str | None = Field(
        None,
        validation_alias=_env("MEDIA_CDN_BASE_URL"),
        description="Optional CDN URL that maps to the root of the media blob container; when "
        "set, product media URLs are `{MEDIA_CDN_BASE_URL}/{blob name}` instead of signed "
        "read URLs.",
    )

    storefront_cache_seconds: int = Field(
        30,
        ge=0,
        le=30,
        validation_alias=_env("CLOUDCART_STOREFRONT_CACHE_SECONDS"),
        description="How long this process keeps a public list page or search response in "
        "memory (at most the list page's 30 s `max-age`); a catalog or search index write "
        "in the process drops them at once. 0 turns the cache off.",
    )

    # --- search port -------------------------------------------------------------------
    search_adapter: Adapter = Field(
        Adapter.embedded,
        validation_alias=_env("CLOUDCART_SEARCH_ADAPTER"),
        description="`embedded` (a tantivy index under the data folder) or `azure` (Azure AI "
        "Search).",
    )
    search_endpoint: str | None = Field(
        None,
        validation_alias=_env("SEARCH_ENDPOINT"),
        description="Azure AI Search service endpoint (https://<name>.search.windows.net); "
        "reached with the app's managed identity.",
    )
    search_index_name: str = Field(
        "products",
        validation_alias=_env("SEARCH_INDEX_NAME"),
        description="Azure AI Search index alias the app reads and writes; `cloudcart search "
        "init` points it at the spec's versioned index (`<name>-v<hash>`).",
    )

    # --- messages port -----------------------------------------------------------------
    messages_adapter: Adapter = Field(
        Adapter.embedded,
        validation_alias=_env("CLOUDCART_MESSAGES_ADAPTER"),
        description="`embedded` (a SQLite broker in the data folder) or `azure` (Service Bus).",
    )
    servicebus_namespace: str | None = Field(
        None,
        validation_alias=_env("ServiceBus__fullyQualifiedNamespace"),
        description="Service Bus namespace host (<name>.servicebus.windows.net); the same "
        "setting the Service Bus triggers' identity-based connection reads.",
    )
    servicebus_connection_string: SecretStr | None = Field(
        None,
        validation_alias=_env("SERVICEBUS_CONNECTION_STRING"),
        description="Connection string, only for the Service Bus emulator; production uses the "
        "app's managed identity.",
    )

    events_topic: str = Field(
        "events",
        validation_alias=_env("EVENTS_TOPIC"),
        description="Topic the outbox relay publishes domain events (`order.placed`, ...) to.",
    )
    ops_topic: str = Field(
        "ops",
        validation_alias=_env("OPS_TOPIC"),
        description="Topic of operational events (`ops.dead_lettered`, `diagnostics.pinged`).",
    )
    outbox_sweep_schedule: str = Field(
        "0 */1 * * * *",
        validation_alias=_env("OUTBOX_SWEEP_SCHEDULE"),
        description="NCRONTAB (six fields) of the timer that relays outbox events the change "
        "feed missed.",
    )

    # --- payments ----------------------------------------------------------------------
    payments_provider: Literal["test", "stripe", "disabled"] = Field(
        "test",
        validation_alias=_env("CLOUDCART_PAYMENTS_PROVIDER"),
        description="`test` (the embedded test gateway: test cards, signed webhooks to this "
        "app), `stripe` (PaymentIntents and Refunds) or `disabled` (no payments: checkout "
        "answers 503 `payments-disabled`; the Azure default until the Stripe secrets exist).",
    )
    test_gateway_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("TEST_GATEWAY_WEBHOOK_SECRET"),
        description="HMAC secret the test gateway signs its webhooks with; generated into the "
        "data folder on first use when unset.",
    )
    test_gateway_duplicate_webhooks: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        validation_alias=_env("TEST_GATEWAY_DUPLICATE_WEBHOOKS"),
        description="Probability that the test gateway delivers a webhook twice, as real "
        "gateways sometimes do.",
    )
    test_gateway_webhook_max_delay_ms: int = Field(
        250,
        ge=0,
        le=10_000,
        validation_alias=_env("TEST_GATEWAY_WEBHOOK_MAX_DELAY_MS"),
        description="The test gateway delays each webhook by a random 0..n ms, so it can race "
        "the checkout response.",
    )
    stripe_secret_key: SecretStr | None = Field(
        None,
        validation_alias=_env("STRIPE_SECRET_KEY"),
        description="Stripe secret API key (a Key Vault reference in Azure).",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("STRIPE_WEBHOOK_SECRET"),
        description="Signing secret (`whsec_...`) of the Stripe webhook endpoint "
        "`/api/webhooks/payments/stripe` (a Key Vault reference in Azure).",
    )
    stripe_publishable_key: str | None = Field(
        None,
        validation_alias=_env("STRIPE_PUBLISHABLE_KEY"),
        description="Stripe publishable key (`pk_...`): the web pay page's Payment Element "
        "loads with it. Not a secret (browsers see it); without it the pay page offers no "
        "card form.",
    )
    stripe_api_base: str | None = Field(
        None,
        validation_alias=_env("STRIPE_API_BASE"),
        description="Overrides https://api.stripe.com; tests point it at a loopback fake.",
    )

    # --- orders ------------------------------------------------------------------------
    payment_window_minutes: float = Field(
        30,
        gt=0,
        validation_alias=_env("PAYMENT_WINDOW_MINUTES"),
        description="How long an unpaid order keeps its stock reserved before the expiry "
        "timer cancels it (fractions allowed, for tests).",
    )
    order_expiry_schedule: str = Field(
        "0 */1 * * * *",
        validation_alias=_env("ORDER_EXPIRY_SCHEDULE"),
        description="NCRONTAB (six fields) of the timer that cancels unpaid orders past their "
        "payment window and releases their stock.",
    )
    return_window_days: int = Field(
        30,
        ge=0,
        validation_alias=_env("RETURN_WINDOW_DAYS"),
        description="Days after delivery during which a customer may request a return.",
    )
    order_tax_rules: str = Field(
        '{"IN": {"rate": 18, "inclusive": true}}',
        validation_alias=_env("ORDER_TAX_RULES"),
        description="JSON object of tax rules by shipping country (ISO 3166 alpha-2): "
        '`{"IN": {"rate": 18, "inclusive": true}}`; countries not listed pay no tax.',
    )
    order_shipping_rates: str = Field(
        '{"standard": 0, "express": 9900}',
        validation_alias=_env("ORDER_SHIPPING_RATES"),
        description="JSON object of shipping methods and their price in minor units of the "
        "order currency.",
    )

    # --- fraud rules (docs/risk.md) ------------------------------------------------------
    risk_mode: Literal["enforce", "monitor", "off"] = Field(
        "enforce",
        validation_alias=_env("RISK_MODE"),
        description="`enforce`: review holds orders and block declines checkouts; `monitor`: "
        "decisions are scored and recorded on the order but change nothing; `off`: no checks.",
    )
    risk_review_score: int = Field(
        50,
        ge=1,
        validation_alias=_env("RISK_REVIEW_SCORE"),
        description="Score from which an order is held (`on_hold`) for an admin's review.",
    )
    risk_block_score: int = Field(
        90,
        ge=1,
        validation_alias=_env("RISK_BLOCK_SCORE"),
        description="Score from which a checkout is declined (422 `checkout-declined`).",
    )
    risk_weights: str = Field(
        "{}",
        validation_alias=_env("RISK_WEIGHTS"),
        description="JSON object of rule name -> weight (0 turns a rule off), merged over the "
        'defaults in docs/risk.md: `{"disposable_email": 60}`.',
    )
    risk_limits: str = Field(
        "{}",
        validation_alias=_env("RISK_LIMITS"),
        description="JSON object of limit name -> number, merged over the defaults in "
        'docs/risk.md: `{"customer_orders_per_hour": 5}`.',
    )
    risk_high_value_first_order: str = Field(
        '{"INR": 5000000, "USD": 100000, "EUR": 100000, "GBP": 80000}',
        validation_alias=_env("RISK_HIGH_VALUE_FIRST_ORDER"),
        description="JSON object of currency -> order total (minor units) from which a "
        "customer's first order counts as high-value; other currencies are not checked.",
    )
    client_ip_header: str = Field(
        "X-Client-IP",
        validation_alias=_env("CLIENT_IP_HEADER"),
        description="Request header the platform's front end sets to the caller's IP: "
        "`X-Client-IP` (App Service / Functions front end), `X-Azure-SocketIP` (Azure Front "
        "Door), `X-Forwarded-For` (its right-most entry, for a proxy of your own), or `socket` "
        "(the TCP peer, for a host with nothing in front, such as `cloudcart serve`).",
    )

    # --- identity ----------------------------------------------------------------------
    identity_adapter: Adapter = Field(
        Adapter.embedded,
        validation_alias=_env("CLOUDCART_IDENTITY_ADAPTER"),
        description="`embedded` (the dev identity provider under /dev/idp) or `azure` "
        "(Azure AD B2C and/or Microsoft Entra External ID).",
    )
    identity_metadata_urls: str = Field(
        "",
        validation_alias=_env("IDENTITY_METADATA_URLS"),
        description="Comma-separated OpenID metadata URLs of the trusted issuers (a B2C policy's "
        "and/or an External ID tenant's .well-known/openid-configuration), all accepting "
        "IDENTITY_AUDIENCE; a B2C URL accepts the user flow it names. IDENTITY_ISSUERS is the "
        "per-issuer form.",
    )
    identity_audience: str = Field(
        "",
        validation_alias=_env("IDENTITY_AUDIENCE"),
        description="Comma-separated accepted `aud` values for IDENTITY_METADATA_URLS: the API "
        "app registration's application (client) id, which Entra v2.0 and B2C access tokens "
        "carry, plus its App ID URI only if your tokens carry that. Unset with the embedded "
        "provider: it mints a fixed dev client id.",
    )
    identity_issuers: str = Field(
        "",
        validation_alias=_env("IDENTITY_ISSUERS"),
        description="JSON list of trusted issuers, each with its own audiences: "
        '`[{"metadataUrl": "...", "audiences": ["<API client id>"], "scopePrefix": '
        '"<App ID URI>", "policies": ["B2C_1_signupsignin"]}]` (`scopePrefix` and B2C '
        "`policies` optional). Replaces IDENTITY_METADATA_URLS/IDENTITY_AUDIENCE; see "
        "docs/identity.md.",
    )
    identity_required_scope: str = Field(
        "shop.api",
        validation_alias=_env("IDENTITY_REQUIRED_SCOPE"),
        description="Scope every customer token must carry in `scp`.",
    )
    identity_roles_claim: str = Field(
        "roles",
        validation_alias=_env("IDENTITY_ROLES_CLAIM"),
        description="Claim holding the caller's roles (`roles` for External ID app roles, a "
        "custom attribute such as `extension_Role` for B2C).",
    )
    identity_admin_role: str = Field(
        "Admin",
        validation_alias=_env("IDENTITY_ADMIN_ROLE"),
        description="Role value that grants the admin API.",
    )
    identity_clock_skew_seconds: int = Field(
        60,
        ge=0,
        le=300,
        validation_alias=_env("IDENTITY_CLOCK_SKEW_SECONDS"),
        description="Leeway for `exp`/`nbf` checks.",
    )
    identity_token_lifetime_seconds: int = Field(
        3600,
        ge=60,
        validation_alias=_env("IDENTITY_TOKEN_LIFETIME_SECONDS"),
        description="Lifetime of tokens minted by the embedded identity provider.",
    )

    # --- web sign-in (MSAL, server-side sessions) ---------------------------------------
    web_auth_client_id: str | None = Field(
        None,
        validation_alias=_env("WEB_AUTH_CLIENT_ID"),
        description="Client (application) id of the web app registration that signs customers "
        "in with the authorization code flow; `cloudcart-web` with the embedded provider.",
    )
    web_auth_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("WEB_AUTH_CLIENT_SECRET"),
        description="Client secret of that registration (a Key Vault reference in Azure); the "
        "embedded provider accepts a fixed dev secret when unset.",
    )
    web_auth_authority: str | None = Field(
        None,
        validation_alias=_env("WEB_AUTH_AUTHORITY"),
        description="MSAL authority: B2C `https://{tenant}.b2clogin.com/{tenant}.onmicrosoft.com/"
        "{sign-up-sign-in policy}` or External ID `https://{tenant}.ciamlogin.com/{tenant}."
        "onmicrosoft.com`. Ignored with the embedded identity provider.",
    )
    web_auth_oidc_authority: str | None = Field(
        None,
        validation_alias=_env("WEB_AUTH_OIDC_AUTHORITY"),
        description="Generic OIDC authority (External ID custom domain); used instead of "
        "WEB_AUTH_AUTHORITY when set (MSAL's `oidc_authority`).",
    )
    web_auth_profile_edit_policy: str | None = Field(
        None,
        validation_alias=_env("WEB_AUTH_PROFILE_EDIT_POLICY"),
        description="B2C profile-edit user flow (`B2C_1_profile_edit`); enables "
        "`/auth/login?flow=profile-edit`.",
    )
    web_auth_password_reset_policy: str | None = Field(
        None,
        validation_alias=_env("WEB_AUTH_PASSWORD_RESET_POLICY"),
        description="B2C password-reset user flow (`B2C_1_password_reset`); enables "
        "`/auth/login?flow=password-reset`.",
    )
    web_auth_scopes: str = Field(
        "",
        validation_alias=_env("WEB_AUTH_SCOPES"),
        description="Space- or comma-separated API scopes the web sign-in requests (e.g. "
        "`api://cloudcart/shop.api`); empty means `{scope prefix}/{IDENTITY_REQUIRED_SCOPE}`, the "
        "scope prefix being the issuer's `scopePrefix`, else its App ID URI audience, else "
        "`api://{client id}`.",
    )
    web_allowed_origins: str = Field(
        "",
        validation_alias=_env("WEB_ALLOWED_ORIGINS"),
        description="Comma-separated origins (`https://shop.example`) that `returnTo` may point "
        "at after sign-in, besides the app's own origin.",
    )
    web_api_url: str | None = Field(
        None,
        validation_alias=_env("CLOUDCART_WEB_API_URL"),
        description="Where the web pages call the public API (`https://api.shop.example`). "
        "Empty: through this app in process, for a front end served with the API.",
    )
    web_session_ttl_seconds: int = Field(
        28_800,
        ge=300,
        le=30 * 86_400,
        validation_alias=_env("WEB_SESSION_TTL_SECONDS"),
        description="Lifetime of a web sign-in session (server-side, in the `sessions` container).",
    )
    dev_idp_https_port: int = Field(
        7072,
        ge=1,
        le=65_535,
        validation_alias=_env("DEV_IDP_HTTPS_PORT"),
        description="Loopback port the embedded identity provider also serves https on (MSAL "
        "only talks to https authorities).",
    )

    # --- ledger --------------------------------------------------------------------------
    ledger_accounts: str = Field(
        "{}",
        validation_alias=_env("LEDGER_ACCOUNTS"),
        description="Chart of accounts: a JSON object of posting role -> account name "
        "(roles: gateway_receivable, bank, sales_revenue, shipping_revenue, tax_payable, "
        "refunds, payment_fees); roles left out keep their default names.",
    )
    ledger_currency: str = Field(
        "INR",
        pattern=r"^[A-Z]{3}$",
        validation_alias=_env("LEDGER_CURRENCY"),
        description="The currency a trial balance is in when the request names none.",
    )

    # --- notifications -------------------------------------------------------------------
    notifications_email_provider: Literal["capture", "sendgrid"] = Field(
        "capture",
        validation_alias=_env("NOTIFICATIONS_EMAIL_PROVIDER"),
        description="`capture` (keep what would have been sent: /dev/notifications/sent and "
        "/dev/mailbox) or `sendgrid` (SendGrid v3 mail send).",
    )
    notifications_text_provider: Literal["capture", "twilio"] = Field(
        "capture",
        validation_alias=_env("NOTIFICATIONS_TEXT_PROVIDER"),
        description="`capture` or `twilio` (Twilio Messages API) for SMS and WhatsApp.",
    )
    notifications_from_email: str = Field(
        "shop@cloudcart.localhost",
        validation_alias=_env("NOTIFICATIONS_FROM_EMAIL"),
        description="Sender address of every email (a verified sender or domain in SendGrid).",
    )
    notifications_from_name: str = Field(
        "Cloudcart",
        validation_alias=_env("NOTIFICATIONS_FROM_NAME"),
        description="Sender name of every email, and the shop name in templates.",
    )
    notifications_ops_email: str | None = Field(
        None,
        validation_alias=_env("NOTIFICATIONS_OPS_EMAIL"),
        description="Where operational alerts (dead letters, stock shortfalls) are emailed; "
        "unset sends none.",
    )
    notifications_quiet_hours: str = Field(
        "21:00-08:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
        validation_alias=_env("NOTIFICATIONS_QUIET_HOURS"),
        description="Local time window (`HH:MM-HH:MM`, in the customer's time zone) in which "
        "marketing messages are held and sent when it ends; transactional ones ignore it.",
    )
    analytics_time_zone: str = Field(
        "UTC",
        validation_alias=_env("ANALYTICS_TIME_ZONE"),
        description="IANA time zone the analytics API shows its UTC buckets in.",
    )
    analytics_low_stock: int = Field(
        5,
        ge=0,
        validation_alias=_env("ANALYTICS_LOW_STOCK"),
        description="A SKU with at most this many units available (and some) is low stock.",
    )
    notifications_default_time_zone: str = Field(
        "UTC",
        validation_alias=_env("NOTIFICATIONS_DEFAULT_TIME_ZONE"),
        description="IANA time zone for customers whose profile names none (quiet hours).",
    )
    notifications_email_per_second: float = Field(
        50.0,
        gt=0,
        validation_alias=_env("NOTIFICATIONS_EMAIL_PER_SECOND"),
        description="Mail-send requests per second one instance makes at most (each request "
        "carries up to 1,000 recipients).",
    )
    notifications_text_per_second: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("NOTIFICATIONS_TEXT_PER_SECOND"),
        description="SMS/WhatsApp messages per second one instance sends at most (the "
        "sender's Twilio throughput: 1/s per long code, 100/s per short code, more through "
        "a Messaging Service).",
    )
    notifications_schedule: str = Field(
        "0 */1 * * * *",
        validation_alias=_env("NOTIFICATIONS_SCHEDULE"),
        description="NCRONTAB (six fields) of the timer that sends held (quiet-hours) "
        "notifications when due and resumes interrupted sends.",
    )
    notifications_webhook_tolerance_seconds: int = Field(
        300,
        ge=30,
        le=3600,
        validation_alias=_env("NOTIFICATIONS_WEBHOOK_TOLERANCE_SECONDS"),
        description="How old a signed SendGrid event webhook timestamp may be (replay guard).",
    )
    sendgrid_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("SENDGRID_API_KEY"),
        description="SendGrid API key with Mail Send access (a Key Vault reference in Azure).",
    )
    sendgrid_api_base: str | None = Field(
        None,
        validation_alias=_env("SENDGRID_API_BASE"),
        description="Overrides https://api.sendgrid.com; tests point it at a loopback server.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        None,
        validation_alias=_env("SENDGRID_WEBHOOK_PUBLIC_KEY"),
        description="Verification key of the signed Event Webhook (base64 DER, from Mail "
        "Settings); unset refuses every event webhook.",
    )
    sendgrid_templates: str = Field(
        "{}",
        validation_alias=_env("SENDGRID_TEMPLATES"),
        description="JSON object of notification template -> SendGrid dynamic template id "
        "(`d-...`) for templates SendGrid should render instead of ours.",
    )
    twilio_account_sid: str | None = Field(
        None,
        validation_alias=_env("TWILIO_ACCOUNT_SID"),
        description="Twilio account SID (`AC...`).",
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        validation_alias=_env("TWILIO_AUTH_TOKEN"),
        description="Twilio auth token: authenticates API calls and signs webhooks (a Key "
        "Vault reference in Azure).",
    )
    twilio_api_base: str | None = Field(
        None,
        validation_alias=_env("TWILIO_API_BASE"),
        description="Overrides https://api.twilio.com; tests point it at a loopback server.",
    )
    twilio_sms_from: str | None = Field(
        None,
        validation_alias=_env("TWILIO_SMS_FROM"),
        description="SMS sender: an E.164 number, or a Messaging Service SID (`MG...`).",
    )
    twilio_whatsapp_from: str | None = Field(
        None,
        validation_alias=_env("TWILIO_WHATSAPP_FROM"),
        description="WhatsApp sender number (E.164, without the `whatsapp:` prefix), or a "
        "Messaging Service SID (`MG...`).",
    )
    twilio_whatsapp_templates: str = Field(
        "{}",
        validation_alias=_env("TWILIO_WHATSAPP_TEMPLATES"),
        description="JSON object of notification template -> approved WhatsApp Content SID "
        "(`HX...`). Business-initiated WhatsApp messages need one: a template without an "
        "entry is not sent on WhatsApp.",
    )

    # --- partner integrations ------------------------------------------------------------
    fulfilment_partner_url: str | None = Field(
        None,
        validation_alias=_env("FULFILMENT_PARTNER_URL"),
        description="Base URL of the fulfilment partner's API; unset turns the fulfilment "
        "connector off (paid orders wait at `paid` for an admin). `cloudcart serve` points it "
        "at the local fulfilment simulator.",
    )
    fulfilment_partner_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("FULFILMENT_PARTNER_API_KEY"),
        description="API key sent to the fulfilment partner (a Key Vault reference on Azure).",
    )
    fulfilment_partner_token_url: str | None = Field(
        None,
        validation_alias=_env("FULFILMENT_PARTNER_TOKEN_URL"),
        description="OAuth2 token endpoint; with a client id and secret the connector uses the "
        "client-credentials grant instead of an API key.",
    )
    fulfilment_partner_client_id: str | None = Field(
        None,
        validation_alias=_env("FULFILMENT_PARTNER_CLIENT_ID"),
        description="OAuth2 client id for the fulfilment partner.",
    )
    fulfilment_partner_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("FULFILMENT_PARTNER_CLIENT_SECRET"),
        description="OAuth2 client secret for the fulfilment partner (a Key Vault reference).",
    )
    fulfilment_partner_scope: str | None = Field(
        None,
        validation_alias=_env("FULFILMENT_PARTNER_SCOPE"),
        description="OAuth2 scope requested for the fulfilment partner, if it needs one.",
    )
    inventory_partner_url: str | None = Field(
        None,
        validation_alias=_env("INVENTORY_PARTNER_URL"),
        description="Base URL of the warehouse management system's API; unset turns the "
        "inventory connector off. `cloudcart serve` points it at the local WMS simulator.",
    )
    inventory_partner_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("INVENTORY_PARTNER_API_KEY"),
        description="API key sent to the WMS (a Key Vault reference on Azure).",
    )
    inventory_partner_token_url: str | None = Field(
        None,
        validation_alias=_env("INVENTORY_PARTNER_TOKEN_URL"),
        description="OAuth2 token endpoint of the WMS (client-credentials grant).",
    )
    inventory_partner_client_id: str | None = Field(
        None,
        validation_alias=_env("INVENTORY_PARTNER_CLIENT_ID"),
        description="OAuth2 client id for the WMS.",
    )
    inventory_partner_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("INVENTORY_PARTNER_CLIENT_SECRET"),
        description="OAuth2 client secret for the WMS (a Key Vault reference).",
    )
    inventory_partner_scope: str | None = Field(
        None,
        validation_alias=_env("INVENTORY_PARTNER_SCOPE"),
        description="OAuth2 scope requested for the WMS, if it needs one.",
    )
    accounting_partner_url: str | None = Field(
        None,
        validation_alias=_env("ACCOUNTING_PARTNER_URL"),
        description="Base URL of the accounting system's API; unset turns its connector "
        "off. `cloudcart serve` points it at the local simulator.",
    )
    accounting_partner_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("ACCOUNTING_PARTNER_API_KEY"),
        description="API key of the accounting system's API (a Key Vault reference on Azure).",
    )
    accounting_partner_token_url: str | None = Field(
        None,
        validation_alias=_env("ACCOUNTING_PARTNER_TOKEN_URL"),
        description="OAuth2 token endpoint for the accounting system's API "
        "(client-credentials grant).",
    )
    accounting_partner_client_id: str | None = Field(
        None,
        validation_alias=_env("ACCOUNTING_PARTNER_CLIENT_ID"),
        description="OAuth2 client id for the accounting system's API.",
    )
    accounting_partner_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("ACCOUNTING_PARTNER_CLIENT_SECRET"),
        description="OAuth2 client secret for the accounting system's API (a Key Vault reference).",
    )
    accounting_partner_scope: str | None = Field(
        None,
        validation_alias=_env("ACCOUNTING_PARTNER_SCOPE"),
        description="OAuth2 scope for the accounting system's API, if it needs one.",
    )
    crm_partner_url: str | None = Field(
        None,
        validation_alias=_env("CRM_PARTNER_URL"),
        description="Base URL of the CRM's contacts API; unset turns its connector off. "
        "`cloudcart serve` points it at the local simulator.",
    )
    crm_partner_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("CRM_PARTNER_API_KEY"),
        description="API key of the CRM's contacts API (a Key Vault reference on Azure).",
    )
    crm_partner_token_url: str | None = Field(
        None,
        validation_alias=_env("CRM_PARTNER_TOKEN_URL"),
        description="OAuth2 token endpoint for the CRM's contacts API (client-credentials grant).",
    )
    crm_partner_client_id: str | None = Field(
        None,
        validation_alias=_env("CRM_PARTNER_CLIENT_ID"),
        description="OAuth2 client id for the CRM's contacts API.",
    )
    crm_partner_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("CRM_PARTNER_CLIENT_SECRET"),
        description="OAuth2 client secret for the CRM's contacts API (a Key Vault reference).",
    )
    crm_partner_scope: str | None = Field(
        None,
        validation_alias=_env("CRM_PARTNER_SCOPE"),
        description="OAuth2 scope for the CRM's contacts API, if it needs one.",
    )
    partner_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        validation_alias=_env("PARTNER_TIMEOUT_SECONDS"),
        description="Timeout of one HTTP call to a partner (connect and read).",
    )
    partner_max_attempts: int = Field(
        4,
        ge=1,
        le=20,
        validation_alias=_env("PARTNER_MAX_ATTEMPTS"),
        description="Attempts of one partner call within one message delivery (429, 5xx and "
        "connection errors are retried with backoff); then the message is abandoned and "
        "Service Bus redelivers it.",
    )
    partner_max_retry_wait_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        validation_alias=_env("PARTNER_MAX_RETRY_WAIT_SECONDS"),
        description="Longest wait between two attempts, Retry-After included.",
    )
    fulfilment_updates_queue: str = Field(
        "fulfilment-updates",
        validation_alias=_env("FULFILMENT_UPDATES_QUEUE"),
        description="Service Bus queue the fulfilment partner sends its updates to.",
    )
    inventory_updates_queue: str = Field(
        "inventory-updates",
        validation_alias=_env("INVENTORY_UPDATES_QUEUE"),
        description="Service Bus queue the WMS sends its stock figures to.",
    )

    # --- marketing ---------------------------------------------------------------------
    abandoned_cart_minutes: int = Field(
        60,
        ge=0,
        le=7 * 24 * 60,
        validation_alias=_env("ABANDONED_CART_MINUTES"),
        description="Minutes a signed-in customer's cart must stay unchanged, with no order, "
        "before the abandoned-cart reminder goes out (marketing consent required).",
    )
    marketing_reminders_queue: str = Field(
        "marketing-reminders",
        validation_alias=_env("MARKETING_REMINDERS_QUEUE"),
        description="Service Bus queue of the scheduled abandoned-cart reminders.",
    )

    @property
    def metadata_urls(self) -> list[str]:
        """The trusted issuers' metadata URLs as a list."""
        return [u.strip() for u in self.identity_metadata_urls.split(",") if u.strip()]

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Map each field to the environment variable that sets it."""
        names: dict[str, str] = {}
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            assert isinstance(alias, AliasChoices)
            first = alias.choices[0]
            assert isinstance(first, str)
            names[field_name] = first
        return names

    def redacted(self) -> dict[str, str]:
        """The effective configuration by environment variable name, secrets masked."""
        out: dict[str, str] = {}
        for field_name, env_name in self.env_names().items():
            value = getattr(self, field_name)
            if isinstance(value, SecretStr):
                out[env_name] = "***"
            elif value is None:
                out[env_name] = ""
            else:
                out[env_name] = str(value)
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
