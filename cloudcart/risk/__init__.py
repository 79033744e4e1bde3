"""Fraud rules: a weighted score with reasons decides `allow`, `review` or `block` for an
order, at checkout before the payment and again when the payment's card is known.

Orders call `assess_checkout` / `record_checkout` from the checkout and `assess_payment` /
`record_decline` from payment events; the `risk` container (counters per UTC day) belongs
to this package alone. See docs/risk.md.
"""

from cloudcart.risk.client_ip import client_ip
from cloudcart.risk.config import Decision, RiskConfig, RiskConfigError, risk_config
from cloudcart.risk.rules import Assessment, Hit
from cloudcart.risk.service import (
    CheckoutCheck,
    CheckoutSignals,
    PaymentSignals,
    assess_checkout,
    assess_payment,
    record_checkout,
    record_decline,
)

__all__ = [
    "Assessment",
    "CheckoutCheck",
    "CheckoutSignals",
    "Decision",
    "Hit",
    "PaymentSignals",
    "RiskConfig",
    "RiskConfigError",
    "assess_checkout",
    "assess_payment",
    "client_ip",
    "record_checkout",
    "record_decline",
    "risk_config",
]
