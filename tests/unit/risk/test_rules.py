"""The rules, the scoring, the configuration and the client IP, as pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.risk import client_ip, rules
from cloudcart.risk.client_ip import ip_bucket
from cloudcart.risk.config import RiskConfigError, build_config
from cloudcart.risk.service import PaymentSignals, disposable_domains, record_decline

CONFIG = build_config(Settings())


def test_defaults_score_and_decide() -> None:
    assert rules.score([], CONFIG).decision == "allow"
    one = rules.Hit("customer_velocity", 50, "x")
    assert rules.score([one, None], CONFIG).decision == "review"
    two = rules.Hit("ip_velocity", 50, "y")
    assessment = rules.score([one, two, rules.Hit("customer_velocity", 50, "again")], CONFIG)
    assert (assessment.score, assessment.decision) == (100, "block")
    assert [h.rule for h in assessment.reasons] == ["customer_velocity", "ip_velocity"]


def test_velocity_is_a_hit_one_over_the_limit() -> None:
    def hit(hour: int, day: int) -> rules.Hit | None:
        return rules.velocity(
            "customer_velocity", "x", hour=hour, day=day, hour_limit=3, day_limit=10, config=CONFIG
        )

    assert hit(2, 2) is None
    assert hit(3, 3) is not None
    assert hit(0, 10) is not None


def test_card_testing_counts_past_declines() -> None:
    kw = {"what": "x", "hour_limit": 2, "day_limit": 4, "config": CONFIG}
    assert rules.card_testing(hour=2, day=2, **kw) is None  # type: ignore[arg-type]
    assert rules.card_testing(hour=3, day=3, **kw) is not None  # type: ignore[arg-type]
    assert rules.card_testing(hour=0, day=5, **kw) is not None  # type: ignore[arg-type]


def test_high_value_first_order_asks_only_when_high() -> None:
    asked: list[bool] = []

    def first() -> bool:
        asked.append(True)
        return True

    low = rules.high_value_first_order(
        total=100, currency="INR", is_first_order=first, config=CONFIG
    )
    assert low is None and asked == []
    high = rules.high_value_first_order(
        total=5_000_000, currency="inr", is_first_order=first, config=CONFIG
    )
    assert high is not None and asked == [True]
    assert (
        rules.high_value_first_order(
            total=10**9, currency="JPY", is_first_order=first, config=CONFIG
        )
        is None
    )


def test_card_country_disposable_accounts_and_spike() -> None:
    assert (
        rules.card_country_mismatch(card_country="in", shipping_country="IN", config=CONFIG) is None
    )
    assert rules.card_country_mismatch(card_country="US", shipping_country="IN", config=CONFIG)
    assert (
        rules.card_country_mismatch(card_country=None, shipping_country="IN", config=CONFIG) is None
    )
    domains = disposable_domains()
    assert "mailinator.com" in domains and "gmail.com" not in domains
    assert rules.disposable_email(email="a@Mailinator.com", domains=domains, config=CONFIG)
    assert rules.disposable_email(email="a@x.mailinator.com", domains=domains, config=CONFIG)
    assert rules.disposable_email(email="a@gmail.com", domains=domains, config=CONFIG) is None
    assert rules.disposable_email(email=None, domains=domains, config=CONFIG) is None
    assert rules.accounts_per_ip(customer_id="c", seen=["a", "b"], limit=3, config=CONFIG) is None
    assert rules.accounts_per_ip(customer_id="c", seen=["a", "b", "d"], limit=3, config=CONFIG)
    assert (
        rules.accounts_per_ip(customer_id="a", seen=["a", "b", "d"], limit=3, config=CONFIG) is None
    )
    assert rules.sku_quantity_spike(lines={"A": 10}, limit=10, config=CONFIG) is None
    assert rules.sku_quantity_spike(lines={"A": 1, "B": 11}, limit=10, config=CONFIG)


def test_settings_are_merged_over_defaults_and_typos_refused() -> None:
    config = build_config(Settings(risk_weights='{"disposable_email": 0}'))
    assert config.weight("disposable_email") == 0 and config.weight("card_testing") == 90
    assert (
        rules.score(
            [
                rules.disposable_email(
                    email="a@mailinator.com", domains={"mailinator.com"}, config=config
                )
            ],
            config,
        ).reasons
        == ()
    )
    with pytest.raises(RiskConfigError, match="unknown name"):
        build_config(Settings(risk_limits='{"customer_orders_per_hr": 1}'))
    with pytest.raises(RiskConfigError):
        build_config(Settings(risk_weights="[1]"))
    with pytest.raises(RiskConfigError):
        build_config(Settings(risk_review_score=80, risk_block_score=60))


def test_client_ip_trusts_only_the_configured_header() -> None:
    headers = {"X-Forwarded-For": "1.2.3.4, 10.0.0.1", "X-Client-IP": "203.0.113.7"}
    assert client_ip(headers, "10.9.9.9", "X-Client-IP") == "203.0.113.7"
    assert client_ip(headers, "10.9.9.9", "X-Azure-SocketIP") is None
    assert client_ip(headers, "10.9.9.9", "X-Forwarded-For") == "10.0.0.1"  # right-most
    assert client_ip(headers, "10.9.9.9", "socket") == "10.9.9.9"
    assert client_ip({"x-client-ip": "203.0.113.7:5123"}, None, "X-Client-IP") == "203.0.113.7"
    assert client_ip({"X-Client-IP": "[2001:db8::1]:443"}, None, "X-Client-IP") == "2001:db8::1"
    assert client_ip({"X-Client-IP": "not an ip"}, None, "X-Client-IP") is None
    assert ip_bucket("2001:db8::1") == ip_bucket("2001:db8::ffff") == "2001:db8::/64"
    assert ip_bucket("203.0.113.7") == "203.0.113.7"


def test_a_redelivered_decline_is_counted_once(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    services = Services(Settings(data_dir=tmp_path))
    services.documents.ensure_containers()
    signals = PaymentSignals(
        order_id="ord_1",
        customer_id="c1",
        event_id="evt_1",
        succeeded=False,
        card_country=None,
        card_fingerprint=None,
        shipping_country="IN",
        placed_at=datetime.now(UTC),
    )
    try:
        assert record_decline(services, signals) is True
        assert record_decline(services, signals) is False
    finally:
        services.close()
