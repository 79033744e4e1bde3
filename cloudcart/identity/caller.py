"""Who is calling: the result of token validation, kept apart from the validator.

Routes and dependencies import only this light module; the validator (and PyJWT with its
cryptography backend) loads on the first authenticated request, not at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudcart.core.errors import CloudcartError


class InvalidToken(CloudcartError):
    """The bearer token was rejected; `reason` says why in words a client developer can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of a request, as the validated token describes them."""

    customer_id: str
    email: str | None
    name: str | None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    issuer: str
    is_admin: bool
