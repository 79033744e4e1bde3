"""The order state machine: a pure transition table and the one function that applies it.

```
pending_payment -> paid -> fulfilling -> shipped -> delivered -> return_requested
                                                                 -> returned -> refunded
pending_payment -> payment_failed | cancelled | on_hold
paid | fulfilling -> cancelled | on_hold ;  on_hold -> pending_payment | paid | fulfilling
                                                       | cancelled
```

Every transition is idempotent: asking for the state an order is already in is a no-op
(`next_status` returns None), so a webhook delivered twice, a retried admin call or a
timer racing a webhook cannot apply an effect twice. Anything not in the table raises
`InvalidTransition` (the API answers 409 naming both states).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from cloudcart.core.errors import DomainError

OrderStatus = Literal[
    "pending_payment",
    "paid",
    "payment_failed",
    "fulfilling",
    "shipped",
    "delivered",
    "cancelled",
    "on_hold",
    "return_requested",
    "returned",
    "refunded",
]

ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_payment": frozenset({"paid", "payment_failed", "cancelled", "on_hold"}),
    "paid": frozenset({"fulfilling", "cancelled", "on_hold"}),
    "fulfilling": frozenset({"shipped", "cancelled", "on_hold"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset({"return_requested"}),
    # An admin may resume a held order; the caller checks it goes back where it came from.
    "on_hold": frozenset({"pending_payment", "paid", "fulfilling", "cancelled"}),
    "return_requested": frozenset({"returned"}),
    "returned": frozenset({"refunded"}),
    # Terminal: a payment that succeeds after these is refunded, not applied.
    "payment_failed": frozenset(),
    "cancelled": frozenset(),
    "refunded": frozenset(),
}

CANCELLABLE: frozenset[str] = frozenset({"pending_payment", "paid", "fulfilling", "on_hold"})
"""States a customer may cancel from ("before shipment")."""

PAID_STATES: frozenset[str] = frozenset(
    {"paid", "fulfilling", "shipped", "delivered", "return_requested", "returned", "refunded"}
)
"""States in which the order's payment was captured."""


class InvalidTransition(DomainError):
    """The order cannot go from `current` to `target`."""

    status = 409
    title = "Conflict"
    problem_type = "invalid-transition"

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"an order cannot go from {current!r} to {target!r}")
        self.current = current
        self.target = target

    def problem_extra(self) -> dict[str, Any]:
        """Both states, so a client can tell which step was refused."""
        return {"from": self.current, "to": self.target}


def can_transition(current: str, target: str) -> bool:
    """Whether `target` is reachable from `current` in one step (or is `current`)."""
    return current == target or target in TRANSITIONS.get(current, frozenset())


def next_status(current: str, target: str) -> str | None:
    """The status to write: `target`, or None when the order is already there (no-op).

    Raises InvalidTransition for a step the table does not allow (or an unknown status).
    """
    if target not in TRANSITIONS or current not in TRANSITIONS:
        raise InvalidTransition(current, target)
    if current == target:
        return None
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(current, target)
    return target
