"""Start-up checks: configuration that must stop the app before it serves a request.

Two kinds. Dev providers under the Functions host: the embedded identity provider signs an
admin token for anyone who asks and the `test` payments provider marks orders paid without
money, and both are the defaults, so an app setting left out in Azure would otherwise open
the shop. And an `azure` identity adapter without its issuers or audiences, which would
otherwise answer every authenticated request with an error instead of failing once, here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from cloudcart.core.errors import CloudcartError
from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity.issuer_config import IdentityConfigError, trusted_issuers

log = logging.getLogger(__name__)

FUNCTIONS_HOST_VARIABLES = ("WEBSITE_INSTANCE_ID", "FUNCTIONS_WORKER_RUNTIME")
"""Set by the Functions host: `WEBSITE_INSTANCE_ID` in Azure, `FUNCTIONS_WORKER_RUNTIME`
in Azure and under a local `func start` (from local.settings.json)."""


class StartupRefused(CloudcartError):
    """The configuration is unsafe or incomplete; the message lists what to change."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Cloudcart refuses to start:\n- " + "\n- ".join(problems))
        self.problems = problems


def under_functions_host(environ: Mapping[str, str]) -> bool:
    """True when the process runs under the Azure Functions host (in Azure or `func start`)."""
    return any(environ.get(name) for name in FUNCTIONS_HOST_VARIABLES)


def _dev_providers(settings: Settings) -> list[str]:
    found = []
    if settings.identity_adapter == Adapter.embedded:
        found.append(
            "CLOUDCART_IDENTITY_ADAPTER is `embedded` (the default): its /dev/idp provider "
            "signs admin tokens for anyone; set it to `azure` with IDENTITY_ISSUERS"
        )
    if settings.payments_provider == "test":
        found.append(
            "CLOUDCART_PAYMENTS_PROVIDER is `test` (the default): the test gateway takes no "
            "money; set it to `stripe`"
        )
    if settings.notifications_email_provider == "capture":
        found.append(
            "NOTIFICATIONS_EMAIL_PROVIDER is `capture` (the default): no email leaves the "
            "app; set it to `sendgrid` with SENDGRID_API_KEY"
        )
    if settings.notifications_text_provider == "capture":
        found.append(
            "NOTIFICATIONS_TEXT_PROVIDER is `capture` (the default): no SMS or WhatsApp "
            "leaves the app; set it to `twilio` with TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    return found


def check_startup(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Raise `StartupRefused` when `settings` must not serve; `environ` defaults to the
    process environment.

    Under the Functions host the dev providers are refused unless
    CLOUDCART_ALLOW_DEV_PROVIDERS=true (local `func start` sets it in local.settings.json).
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    dev = _dev_providers(settings)
    if dev and under_functions_host(env):
        if settings.allow_dev_providers:
            log.warning(
                "running under the Functions host with dev providers "
                "(CLOUDCART_ALLOW_DEV_PROVIDERS=true): %s",
                "; ".join(dev),
            )
        else:
            problems.extend(dev)
            problems.append(
                "these dev providers are refused under the Functions host; for a local "
                "`func start` set CLOUDCART_ALLOW_DEV_PROVIDERS=true in local.settings.json"
            )
    if settings.identity_adapter == Adapter.azure:
        try:
            trusted_issuers(settings)
        except IdentityConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise StartupRefused(problems)
