"""`CLOUDCART_PAYMENTS_PROVIDER=disabled`: a shop that takes no payments.

The Azure default until the Stripe secrets exist (infra/bicep, `paymentsProvider`):
checkout answers 503 `payments-disabled` and nothing is sent to any provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudcart.core.ports.payments import DISABLED_PROVIDER, DisabledGateway

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings


def from_settings(settings: Settings) -> DisabledGateway:
    """The gateway that refuses every call."""
    del settings  # nothing to configure
    return DisabledGateway(DISABLED_PROVIDER, "CLOUDCART_PAYMENTS_PROVIDER is disabled")
