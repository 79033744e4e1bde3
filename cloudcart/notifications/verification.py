"""Email and phone verification codes: send a 6-digit code, confirm it, set the profile flag.

Documents in the `notifications` container (partition key `/customerId`):

- `verify-email`, `verify-phone` (kind `verification`, the customer's partition): the
  latest code of a channel as a salted HMAC-SHA256 (never the code itself), a hash of the
  destination it went to, attempts, status (`pending`, `verified`, `exhausted`), expiry;
- `verify-limit-email`, `verify-limit-phone` (kind `verify-limit`, the customer's
  partition): when the customer was sent codes on that channel in the last hour;
- `verify-limit` (kind `verify-limit`) in partition `~dest:<sha256 of the destination>`:
  when anyone had a code sent to that email address or number in the last hour.

Rules:

- A code is valid for `CODE_LIFETIME` (10 minutes) and `MAX_ATTEMPTS` (5) tries. The fifth
  wrong try kills it; a new one must be requested. A new request replaces the channel's
  previous code, so only the latest code works.
- Sends are limited per customer and channel (`SENDS_PER_HOUR` an hour) and per
  destination across customers (`SENDS_PER_HOUR` an hour, at least `MIN_GAP` apart), so
  nobody can use the shop to flood an inbox or a phone. A refused send answers 429 with
  the seconds to wait.
- Every write is conditional (create, or replace If-Match the ETag read), re-read and
  retried when it loses a race: two concurrent confirms cannot both spend one attempt, and
  concurrent requests cannot both slip under a limit.
- A correct code sets the profile's flag through `CustomerService.mark_verified`, which
  refuses when the profile's email or phone is no longer the one the code was sent to.

Only the customer's own partition is erased with the customer (by
`cloudcart.notifications.privacy`): the per-destination counters carry no customer id,
only a hash of the address or number, and expire an hour after their last send; keeping
them through an erasure means erasing an account cannot reset a victim's limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.ids import new_id
from cloudcart.core.ports.channels import ProviderBusy, ProviderRejected
from cloudcart.core.ports.documents import BatchOp, Container, Document, DocumentStore, strip_system
from cloudcart.customers.service import VERIFIED_FLAGS, CustomerService

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

CONTAINER = "notifications"
KIND = "verification"
LIMIT_KIND = "verify-limit"
DESTINATION_PARTITION_PREFIX = "~dest:"

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
SENDS_PER_HOUR = 5
"""Codes per hour, per customer and channel, and per destination."""
LIMIT_WINDOW = timedelta(hours=1)
MIN_GAP = timedelta(seconds=30)
"""Least time between two codes sent to one destination."""

# Housekeeping only: the rules above are decided from the stored times, never from whether
# a document still exists. A code document outlives its code by a day so a late confirm
# still hears "expired" rather than "nothing pending".
_CODE_TTL_SECONDS = 24 * 3600
_LIMIT_TTL_SECONDS = int(LIMIT_WINDOW.total_seconds()) + 60
_RETRIES = 5
# At least the destination's gap: the failed send was counted, so an earlier retry would
# only meet 429.
_PROVIDER_RETRY_AFTER_SECONDS = max(30, math.ceil(MIN_GAP.total_seconds()))

Channel = Literal["email", "phone"]
"""What is verified: the profile's `email` or its `phone`."""

SendChannel = Literal["email", "sms"]
"""How a code travels: phone codes go by SMS."""

_SEND_CHANNEL: dict[Channel, SendChannel] = {"email": "email", "phone": "sms"}


class CodeSender(Protocol):
    """Delivers one code now (`cloudcart.notifications.service.send_verification_code`).

    Raises `channels.ProviderBusy` or `channels.ProviderRejected`.
    """

    def __call__(
        self,
        *,
        customer_id: str,
        channel: SendChannel,
        destination: str,
        code: str,
        minutes: int,
        locale: str | None,
        attempt_id: str,
        name: str | None,
    ) -> None:
        """Send `code` to `destination`; a repeat with the same `attempt_id` sends once."""
        ...


class NotificationSender:
    """The production `CodeSender`: the notification service's verification send."""

    def __init__(self, services: Services) -> None:
        """`services`: the app's adapters, passed on to the notification service."""
        self._services = services

    def __call__(
        self,
        *,
        customer_id: str,
        channel: SendChannel,
        destination: str,
        code: str,
        minutes: int,
        locale: str | None,
        attempt_id: str,
        name: str | None,
    ) -> None:
        """Send through `send_verification_code` (see there for its errors)."""
        # Imported on use: the templates and provider adapters load only when a code is sent.
        from cloudcart.notifications.service import send_verification_code

        send_verification_code(
            self._services,
            customer_id=customer_id,
            channel=channel,
            destination=destination,
            code=code,
            minutes=minutes,
            locale=locale,
            attempt_id=attempt_id,
            name=name,
        )


# --- errors -------------------------------------------------------------------------------


class VerificationError(DomainError):
    """A verification request refused (`retry_after`, when set, goes out as Retry-After)."""


class NoDestination(VerificationError):
    """The profile has no email (`no-email`) or no phone (`no-phone`) to verify."""

    status = 409
    title = "Conflict"

    def __init__(self, channel: Channel) -> None:
        """`channel`: the profile field that is empty."""
        super().__init__(f"the profile has no {channel}; set one first (PATCH /api/me/profile)")
        # Literal slugs, so the problem catalogue's test can see them.
        self.problem_type = "no-email" if channel == "email" else "no-phone"


class AlreadyVerified(VerificationError):
    """The profile's current email or phone is verified already."""

    problem_type = "already-verified"

    def __init__(self, channel: Channel) -> None:
        """`channel`: the verified field."""
        super().__init__(f"the profile's {channel} is already verified")


class VerificationRateLimited(VerificationError):
    """Too many codes for this customer and channel, or for this destination, recently."""

    problem_type = "verification-rate-limited"

    def __init__(self, retry_after: int) -> None:
        """`retry_after`: whole seconds until a code may be sent again."""
        super().__init__(f"too many verification codes were sent; retry in {retry_after} s")
        self.retry_after = retry_after

    def problem_extra(self) -> dict[str, Any]:
        """The wait, also in the body for clients that do not read headers."""
        return {"retryAfter": self.retry_after}


class NoPendingVerification(VerificationError):
    """No code is waiting for confirmation on this channel."""

    problem_type = "no-pending-verification"

    def __init__(self, channel: Channel) -> None:
        """`channel`: the channel asked about."""
        super().__init__(f"no {channel} verification is pending; request a code first")


class CodeInvalid(VerificationError):
    """The code does not match; `attempts_left` more tries before it dies."""

    problem_type = "verification-code-invalid"

    def __init__(self, attempts_left: int) -> None:
        """`attempts_left`: tries left on this code."""
        super().__init__(f"the code is not correct; {attempts_left} attempts left")
        self.attempts_left = attempts_left

    def problem_extra(self) -> dict[str, Any]:
        """`attemptsLeft`: how many more tries this code allows."""
        return {"attemptsLeft": self.attempts_left}


class CodeExpired(VerificationError):
    """The code's lifetime is over; a new one must be requested."""

    problem_type = "verification-code-expired"

    def __init__(self) -> None:
        """No arguments: the detail is fixed."""
        super().__init__("the code has expired; request a new one")


class AttemptsExhausted(VerificationError):
    """Every try of the code was spent on wrong guesses; a new one must be requested."""

    problem_type = "verification-attempts-exhausted"

    def __init__(self) -> None:
        """No arguments: the detail is fixed."""
        super().__init__(
            f"the code was entered wrongly {MAX_ATTEMPTS} times and no longer works; "
            "request a new one"
        )

    def problem_extra(self) -> dict[str, Any]:
        """`attemptsLeft` is 0, as on the wrong-code problem."""
        return {"attemptsLeft": 0}


class DestinationChanged(VerificationError):
    """The profile's email or phone changed since the code was sent: it proves nothing."""

    problem_type = "verification-destination-changed"

    def __init__(self, channel: Channel) -> None:
        """`channel`: the field that changed."""
        super().__init__(
            f"the profile's {channel} changed after the code was sent; request a new code"
        )


class ProviderUnavailable(VerificationError):
    """The email or SMS provider is busy or down; the code may not have gone out."""

    problem_type = "notification-provider-unavailable"

    def __init__(self, retry_after: int) -> None:
        """`retry_after`: whole seconds to wait before asking again."""
        super().__init__("the message could not be sent right now; retry later")
        self.retry_after = retry_after


class DestinationRejected(VerificationError):
    """The provider refused the destination (invalid, unreachable, opted out, suppressed)."""

    problem_type = "destination-rejected"

    def __init__(self, channel: Channel) -> None:
        """`channel`: the refused field."""
        super().__init__(
            f"the {channel} on the profile cannot receive messages; change it and retry"
        )


class VerificationBusy(VerificationError):
    """The records kept changing under concurrent requests past every retry."""

    problem_type = "concurrent-change"

    def __init__(self) -> None:
        """No arguments: the detail is fixed."""
        super().__init__("the verification was changed concurrently several times; retry")


# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSent:
    """A code on its way: where to (masked) and until when it works."""

    channel: Channel
    destination: str
    """Masked: `a***@example.com`, `+91******3210`."""
    expires_at: datetime
    attempt_id: str


def mask_email(address: str) -> str:
    """`asha@example.com` -> `a***@example.com`: enough to recognise, not to harvest."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(number: str) -> str:
    """`+919876543210` -> `+91******3210`: the country prefix and last four digits stay."""
    digits = number.lstrip("+")
    keep_start, keep_end = (2, 4) if len(digits) >= 8 else (1, 2)
    if len(digits) <= keep_start + keep_end:
        return "+" + "*" * len(digits)
    hidden = len(digits) - keep_start - keep_end
    return f"+{digits[:keep_start]}{'*' * hidden}{digits[-keep_end:]}"


def mask_destination(channel: Channel, destination: str) -> str:
    """The destination as shown back to the customer."""
    return mask_email(destination) if channel == "email" else mask_phone(destination)


def destination_hash(destination: str) -> str:
    """SHA-256 (hex) of the normalised destination: the key of its counters."""
    # Lower-cased: mailbox providers treat the local part case-insensitively, and limits
    # must not be dodged by changing case. E.164 numbers are already canonical.
    return hashlib.sha256(destination.strip().lower().encode()).hexdigest()


def _code_hash(salt: str, code: str) -> str:
    return hmac.new(bytes.fromhex(salt), code.encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _read(container: Container, id: str, partition_key: str) -> Document | None:
    try:
        return container.read(id, partition_key)
    except NotFound:
        return None


def _recent(document: Document | None, now: datetime) -> list[datetime]:
    """Send times of a counter that are still inside the window, oldest first."""
    if document is None:
        return []
    times = (datetime.fromisoformat(str(t)) for t in document.get("sends", []))
    return sorted(t for t in times if t > now - LIMIT_WINDOW)


def _wait(sends: list[datetime], now: datetime, *, gap: bool) -> int | None:
    """Whole seconds until one more send fits the limits, or None when it fits now."""
    waits: list[timedelta] = []
    if len(sends) >= SENDS_PER_HOUR:
        # The send that must leave the window is the one SENDS_PER_HOUR from the end.
        waits.append(sends[-SENDS_PER_HOUR] + LIMIT_WINDOW - now)
    if gap and sends:
        waits.append(sends[-1] + MIN_GAP - now)
    longest = max(waits, default=timedelta(0))
    if longest <= timedelta(0):
        return None
    return max(1, math.ceil(longest.total_seconds()))


def _write_op(previous: Document | None, document: Document) -> BatchOp:
    if previous is None:
        return BatchOp("create", document=document)
    return BatchOp("replace", document=document, if_match=previous["_etag"])


# --- the service --------------------------------------------------------------------------


class VerificationCodes:
    """Sends and checks verification codes of one request.

    `clock` decides expiry and limits (tests pass a manual clock); `send` delivers a code.
    """

    def __init__(
        self,
        documents: DocumentStore,
        send: CodeSender,
        *,
        clock: Callable[[], datetime] = utcnow,
        correlation_id: str | None = None,
    ) -> None:
        """`documents`: the store; `correlation_id` travels on the profile's events."""
        self.container = documents.container(CONTAINER)
        self.customers = CustomerService(documents, correlation_id=correlation_id)
        self._send = send
        self._clock = clock

    # --- sending ------------------------------------------------------------------------

    def request_code(self, customer_id: str, channel: Channel) -> CodeSent:
        """Send a new code to the profile's email or phone, replacing any pending one.

        Raises NotFound (no profile), NoDestination, AlreadyVerified,
        VerificationRateLimited, ProviderUnavailable, DestinationRejected.
        """
        profile = self.customers.get_profile(customer_id)
        if profile is None:
            raise NotFound(customer_id)
        destination = profile.get(channel)
        if not destination:
            raise NoDestination(channel)
        if profile.get(VERIFIED_FLAGS[channel]) is True:
            raise AlreadyVerified(channel)
        now = self._clock()
        limit_id = f"verify-limit-{channel}"
        # Checked before the destination's counter is charged, so a customer over their
        # own limit does not also use up the destination's.
        wait = _wait(_recent(_read(self.container, limit_id, customer_id), now), now, gap=False)
        if wait is not None:
            raise VerificationRateLimited(wait)
        dest_hash = destination_hash(str(destination))
        self._charge_destination(dest_hash, now)
        code = _new_code()
        stored = self._store_code(customer_id, channel, dest_hash, code, now)
        expires_at = datetime.fromisoformat(stored["expiresAt"])
        try:
            self._send(
                customer_id=customer_id,
                channel=_SEND_CHANNEL[channel],
                destination=str(destination),
                code=code,
                minutes=int(CODE_LIFETIME.total_seconds() // 60),
                locale=profile.get("locale"),
                attempt_id=stored["attemptId"],
                name=profile.get("name"),
            )
        except ProviderBusy as exc:
            # The code stays: after a timeout it may have arrived. The send was counted,
            # so the wait is at least the destination's gap, or the retry would meet 429.
            logger.warning("verification code not sent, provider busy: %s", exc)
            asked = math.ceil(exc.retry_after) if exc.retry_after else 0
            raise ProviderUnavailable(max(asked, _PROVIDER_RETRY_AFTER_SECONDS)) from exc
        except ProviderRejected as exc:
            # Known not delivered: a pending code nobody can know would only mislead.
            self._discard(stored)
            raise DestinationRejected(channel) from exc
        return CodeSent(
            channel=channel,
            destination=mask_destination(channel, str(destination)),
            expires_at=expires_at,
            attempt_id=stored["attemptId"],
        )

    def _discard(self, record: Document) -> None:
        """Delete this version of a code document; a newer one (another request) stays."""
        with contextlib.suppress(NotFound, PreconditionFailed):
            self.container.delete(record["id"], record["customerId"], if_match=record["_etag"])

    def _charge_destination(self, dest_hash: str, now: datetime) -> None:
        """Count one send to the destination, or raise VerificationRateLimited."""
        partition = DESTINATION_PARTITION_PREFIX + dest_hash
        for _ in range(_RETRIES):
            current = _read(self.container, LIMIT_KIND, partition)
            sends = _recent(current, now)
            wait = _wait(sends, now, gap=True)
            if wait is not None:
                raise VerificationRateLimited(wait)
            counter: Document = {
                "id": LIMIT_KIND,
                "kind": LIMIT_KIND,
                "customerId": partition,
                "sends": [_iso(t) for t in [*sends, now]],
                "ttl": _LIMIT_TTL_SECONDS,
            }
            try:
                if current is None:
                    self.container.create(counter)
                else:
                    self.container.replace(counter, if_match=current["_etag"])
            except (Conflict, PreconditionFailed, NotFound):
                continue  # another send to this destination got in first: count again
            return
        raise VerificationBusy()

    def _store_code(
        self, customer_id: str, channel: Channel, dest_hash: str, code: str, now: datetime
    ) -> Document:
        """Charge the customer's counter and store the code, in one batch; the stored code."""
        limit_id = f"verify-limit-{channel}"
        code_id = f"verify-{channel}"
        salt = secrets.token_hex(16)
        for _ in range(_RETRIES):
            counter = _read(self.container, limit_id, customer_id)
            sends = _recent(counter, now)
            wait = _wait(sends, now, gap=False)
            if wait is not None:
                raise VerificationRateLimited(wait)
            previous = _read(self.container, code_id, customer_id)
            new_counter: Document = {
                "id": limit_id,
                "kind": LIMIT_KIND,
                "customerId": customer_id,
                "channel": channel,
                "sends": [_iso(t) for t in [*sends, now]],
                "ttl": _LIMIT_TTL_SECONDS,
            }
            record: Document = {
                "id": code_id,
                "kind": KIND,
                "customerId": customer_id,
                "channel": channel,
                "attemptId": new_id("vfy_"),
                "destinationHash": dest_hash,
                "salt": salt,
                "codeHash": _code_hash(salt, code),
                "attempts": 0,
                "status": "pending",
                "createdAt": _iso(now),
                "expiresAt": _iso(now + CODE_LIFETIME),
                "ttl": _CODE_TTL_SECONDS,
            }
            try:
                results = self.container.batch(
                    customer_id, [_write_op(counter, new_counter), _write_op(previous, record)]
                )
            except BatchFailed as exc:
                if isinstance(exc.cause, Conflict | PreconditionFailed | NotFound):
                    continue  # a concurrent request of this customer: decide again
                raise
            return results[1]
        raise VerificationBusy()

    # --- confirming ---------------------------------------------------------------------

    def confirm_code(self, customer_id: str, channel: Channel, code: str) -> None:
        """Check `code`; when it is right, set the profile's verified flag.

        A repeat of a successful confirm (same code, within its lifetime) succeeds again.
        Raises NoPendingVerification, CodeExpired, CodeInvalid, AttemptsExhausted,
        DestinationChanged.
        """
        record = self._consume(customer_id, channel, code)
        profile = self.customers.get_profile(customer_id)
        destination = profile.get(channel) if profile else None
        if (
            not destination
            or destination_hash(str(destination)) != record.get("destinationHash")
            or not self.customers.mark_verified(customer_id, channel, str(destination))
        ):
            self._discard(record)
            raise DestinationChanged(channel)

    def _consume(self, customer_id: str, channel: Channel, code: str) -> Document:
        """Spend one attempt on `code`; the code document once it is marked verified."""
        code_id = f"verify-{channel}"
        for _ in range(_RETRIES):
            record = _read(self.container, code_id, customer_id)
            if record is None or record.get("kind") != KIND:
                raise NoPendingVerification(channel)
            now = self._clock()
            alive = now < datetime.fromisoformat(str(record["expiresAt"]))
            matches = hmac.compare_digest(
                _code_hash(str(record["salt"]), code), str(record["codeHash"])
            )
            status = record.get("status")
            if status == "verified":
                if matches and alive:
                    return record  # a retried confirm whose answer was lost
                raise NoPendingVerification(channel)
            if status == "exhausted":
                raise AttemptsExhausted()
            if not alive:
                raise CodeExpired()
            attempts = int(record.get("attempts", 0)) + (0 if matches else 1)
            if matches:
                updated = {**strip_system(record), "status": "verified", "verifiedAt": _iso(now)}
            else:
                dead = attempts >= MAX_ATTEMPTS
                updated = {
                    **strip_system(record),
                    "attempts": attempts,
                    "status": "exhausted" if dead else "pending",
                }
            try:
                stored = self.container.replace(updated, if_match=record["_etag"])
            except (PreconditionFailed, NotFound):
                continue  # a concurrent confirm or a new code: judge against that
            if matches:
                return stored
            if attempts >= MAX_ATTEMPTS:
                raise AttemptsExhausted()
            raise CodeInvalid(MAX_ATTEMPTS - attempts)
        raise VerificationBusy()


# --- privacy ------------------------------------------------------------------------------


__all__ = [
    "CODE_LIFETIME",
    "MAX_ATTEMPTS",
    "MIN_GAP",
    "SENDS_PER_HOUR",
    "AlreadyVerified",
    "AttemptsExhausted",
    "Channel",
    "CodeExpired",
    "CodeInvalid",
    "CodeSender",
    "CodeSent",
    "DestinationChanged",
    "DestinationRejected",
    "NoDestination",
    "NoPendingVerification",
    "NotificationSender",
    "ProviderUnavailable",
    "VerificationBusy",
    "VerificationCodes",
    "VerificationError",
    "VerificationRateLimited",
    "destination_hash",
    "mask_destination",
    "mask_email",
    "mask_phone",
]
