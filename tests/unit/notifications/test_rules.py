"""The event-to-template rules and the subscriptions that feed them agree."""

from __future__ import annotations

from cloudcart.core.messages.topology import TOPOLOGY, SubjectIn, Topic
from cloudcart.notifications import rules, templates


def _subjects(topic: str) -> tuple[str, ...]:
    entity = TOPOLOGY.entity(topic)
    assert isinstance(entity, Topic)
    found = entity.subscription(rules.OPS_SUBSCRIPTION).filter
    assert isinstance(found, SubjectIn)
    return found.subjects


def test_the_subscriptions_carry_exactly_the_events_the_rules_handle() -> None:
    assert sorted(_subjects("events")) == sorted(rules.SUBSCRIBED_EVENTS)
    assert sorted(_subjects("ops")) == sorted(rules.OPS_EVENTS)


def test_every_rule_names_an_existing_template() -> None:
    named = {*rules.CUSTOMER_TEMPLATES.values(), "ops-alert"}
    assert named <= set(templates.TEMPLATES)


def test_the_bulk_and_verification_templates_exist() -> None:
    for name in ("back-in-stock", "abandoned-cart", "verify-email", "verify-phone"):
        assert name in templates.TEMPLATES
    assert templates.TEMPLATES["abandoned-cart"].kind == "marketing"
