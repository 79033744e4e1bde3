"""HTTP adapters of the partner ports, over the partner API in docs/partners/api.md.

`PartnerHttpClient` is the one place that talks HTTP to a partner: it authenticates (API
key or OAuth2 client credentials), puts an `Idempotency-Key` on every POST (the same one on
every retry, so a retried call can never create a second request at the partner), bounds
each attempt with a timeout, and retries connection errors, timeouts, 408, 429 and 5xx
with exponential backoff and full jitter, honouring `Retry-After`. When the attempts run
out it raises `PartnerUnavailable`; any other 4xx raises `PartnerRejected` at once.

`HttpFulfilmentPartner`, `HttpInventoryPartner`, `HttpAccountingPartner` and
`HttpCrmPartner` map the ports' dataclasses to the partner API's camelCase JSON and back.
The PUT and DELETE calls of the CRM pass their operation's key explicitly, so they carry
the same header on every retry as a POST does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol
from urllib.parse import quote

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from cloudcart.core.ports.partners import (
    CancelOutcome,
    Contact,
    FulfilmentAccepted,
    FulfilmentRequest,
    JournalEntry,
    OrderStats,
    PartnerName,
    PartnerRejected,
    PartnerTrialBalance,
    PartnerUnavailable,
    StockFigure,
    StockMove,
)
from cloudcart.core.settings import Settings
from cloudcart.core.throttling import retry_after_seconds

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers worth another attempt (any other 5xx is retried as well)."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
API_KEY_HEADER = "X-Api-Key"

_BACKOFF_MULTIPLIER = 0.5
"""First backoff window in seconds; it doubles per attempt up to the configured cap."""
_MAX_DETAIL = 500


# --- authentication -----------------------------------------------------------------------


class PartnerAuth(Protocol):
    """How the client authenticates to a partner."""

    def headers(self, http: httpx.Client) -> dict[str, str]:
        """Headers to add to the next request (may fetch a token through `http`)."""
        ...

    def renew(self, sent: Mapping[str, str]) -> bool:
        """The partner answered 401 to a request carrying `sent`: forget those credentials.

        True when fresh credentials may succeed (the request is sent once more), False
        when the 401 is final.
        """
        ...


class ApiKeyAuth:
    """A static API key in the `X-Api-Key` header."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("the API key is empty")
        self._key = key

    def headers(self, http: httpx.Client) -> dict[str, str]:
        """`X-Api-Key: <key>`."""
        return {API_KEY_HEADER: self._key}

    def renew(self, sent: Mapping[str, str]) -> bool:
        """A rejected key stays rejected."""
        return False

    def __repr__(self) -> str:
        return "ApiKeyAuth(key=***)"


class ClientCredentialsAuth:
    """OAuth2 client-credentials grant (RFC 6749 section 4.4) with a cached bearer token.

    The token is fetched on first use and reused by every thread until shortly before its
    `expires_in` runs out; a 401 from the partner discards it, so the next request fetches
    a new one. One thread fetches at a time and the others reuse its result, so a burst of
    calls on an empty cache costs one token request.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        default_lifetime: float = 300.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._clock = clock
        self._default_lifetime = default_lifetime
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0
        """Token requests made so far (for diagnostics and tests)."""

    def headers(self, http: httpx.Client) -> dict[str, str]:
        """`Authorization: Bearer <token>`, fetching a token when none is valid."""
        return {"Authorization": f"Bearer {self._current(http)}"}

    def renew(self, sent: Mapping[str, str]) -> bool:
        """Drop the token `sent` carried, unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and sent.get("Authorization") == f"Bearer {self._token}":
                self._token = None
        return True

    def _current(self, http: httpx.Client) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
            token, lifetime = self._fetch(http)
            # Renew a little early: a token that expires in flight earns a 401 and a retry.
            self._renew_at = self._clock() + lifetime - min(60.0, lifetime / 10)
            self._token = token
            return token

    def _fetch(self, http: httpx.Client) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        self.fetches += 1
        response = http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        if response.status_code != 200:
            _raise_for_status(response, "the token endpoint")
        try:
            body = response.json()
            token = body["access_token"]
            if not isinstance(token, str) or not token:
                raise TypeError("access_token is not a non-empty string")
            lifetime = float(body.get("expires_in", self._default_lifetime))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise PartnerRejected(
                response.status_code, f"the token endpoint's answer is unusable: {error}"
            ) from error
        if not math.isfinite(lifetime) or lifetime <= 0:
            lifetime = self._default_lifetime
        return token, lifetime

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self.token_url!r}, client_id={self.client_id!r})"


# --- the client ---------------------------------------------------------------------------


class _RetryableAnswer(Exception):
    """An answer worth another attempt; carries what the last-attempt error must name."""

    def __init__(self, status: int, source: str, retry_after: float | None) -> None:
        super().__init__(f"{source} answered {status}")
        self.status = status
        self.retry_after = retry_after


_RETRIED_ERRORS = (
    _RetryableAnswer,
    httpx.TimeoutException,
    httpx.NetworkError,
    # The peer closed the connection mid-answer (a crashed or restarting server).
    httpx.RemoteProtocolError,
)


def _raise_for_status(response: httpx.Response, source: str) -> NoReturn:
    status = response.status_code
    if status in RETRYABLE_STATUSES or status >= 500:
        raise _RetryableAnswer(status, source, retry_after_seconds(response.headers))
    detail = _detail(response)
    raise PartnerRejected(status, detail if source == "the partner" else f"{source}: {detail}")


def _detail(response: httpx.Response) -> str:
    """The `detail` of a problem/JSON answer, else its text (bounded)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("detail", "title", "error_description", "error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:_MAX_DETAIL]
    text = response.text.strip()
    return text[:_MAX_DETAIL] if text else (response.reason_phrase or "no detail")


class PartnerHttpClient:
    """A partner's HTTP API: authentication, timeouts, retries, idempotency keys.

    One `httpx.Client` (and its connection pool) is built here and reused by every call
    and thread; `close()` releases it. `sleep` performs the waits between attempts (tests
    pass a recorder). `name` only labels errors and logs.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: PartnerAuth | None,
        timeout: float,
        max_attempts: int,
        max_retry_wait: float,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "partner",
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.auth = auth
        self._max_attempts = max_attempts
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._backoff = wait_random_exponential(multiplier=_BACKOFF_MULTIPLIER, max=max_retry_wait)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "cloudcart-partner-client/1"},
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> PartnerHttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        accept: Collection[int] = (),
    ) -> httpx.Response:
        """Send one call, retrying as described in the module docstring.

        Returns the (read) response when it is 2xx or its status is in `accept`; raises
        PartnerRejected for another 4xx and PartnerUnavailable when the attempts ran out.
        A POST without `idempotency_key` gets a fresh one, reused by its retries.
        """
        method = method.upper()
        headers: dict[str, str] = {}
        if method == "POST":
            headers[IDEMPOTENCY_HEADER] = idempotency_key or str(uuid.uuid4())
        elif idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        label = f"{self.name} {method} {path}"

        def attempt() -> httpx.Response:
            response = self._send(method, path, json, params, headers)
            if response.is_success or response.status_code in accept:
                return response
            _raise_for_status(response, "the partner")

        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_RETRIED_ERRORS),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(label, state),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _RetryableAnswer as error:
            attempts = retrying.statistics.get("attempt_number", self._max_attempts)
            raise PartnerUnavailable(
                f"{label}: {error} (attempt {attempts} of {self._max_attempts})"
            ) from error
        except httpx.HTTPError as error:
            attempts = retrying.statistics.get("attempt_number", self._max_attempts)
            raise PartnerUnavailable(
                f"{label}: {type(error).__name__}: {error or 'no detail'} "
                f"(attempt {attempts} of {self._max_attempts})"
            ) from error

    def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        sent = dict(headers)
        if self.auth is not None:
            sent.update(self.auth.headers(self._http))
        response = self._http.request(method, path, json=json, params=params, headers=sent)
        if response.status_code == 401 and self.auth is not None and self.auth.renew(sent):
            # Once only: a second 401 with fresh credentials is the partner's final word.
            sent = {**headers, **self.auth.headers(self._http)}
            response = self._http.request(method, path, json=json, params=params, headers=sent)
        return response

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _RetryableAnswer) and error.retry_after is not None:
            return min(error.retry_after, self._max_retry_wait)
        return min(self._backoff(state), self._max_retry_wait)

    @staticmethod
    def _log_retry(label: str, state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "%s failed on attempt %d (%s); retrying in %.2fs",
            label,
            state.attempt_number,
            f"{type(error).__name__}: {error}" if error is not None else "no answer",
            wait,
        )


def _json_object(response: httpx.Response, label: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise PartnerUnavailable(f"{label}: the answer is not JSON") from error
    if not isinstance(body, dict):
        raise PartnerUnavailable(f"{label}: the answer is not a JSON object")
    return body


def _field(body: Mapping[str, Any], name: str, kind: type, label: str) -> Any:
    value = body.get(name)
    # bool is an int subclass; a partner answering `true` for a count is broken.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PartnerUnavailable(f"{label}: the answer lacks a valid {name!r}")
    return value


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC with `Z`; a naive datetime is taken to be UTC (as Cloudcart stores)."""
    aware = value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


# --- the ports ----------------------------------------------------------------------------


class HttpFulfilmentPartner:
    """`FulfilmentPartner` over the fulfilment API (`/v1/fulfilment-requests`)."""

    def __init__(self, client: PartnerHttpClient) -> None:
        self.client = client

    def create_request(
        self, request: FulfilmentRequest, *, idempotency_key: str
    ) -> FulfilmentAccepted:
        """POST /v1/fulfilment-requests; a replayed key answers the original request."""
        body = {
            "orderId": request.order_id,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in request.lines],
            "shippingAddress": dict(request.shipping_address),
            "shippingMethod": request.shipping_method,
            "currency": request.currency,
            "placedAt": request.placed_at,
        }
        path = "/v1/fulfilment-requests"
        response = self.client.request("POST", path, json=body, idempotency_key=idempotency_key)
        answer = _json_object(response, f"POST {path}")
        return FulfilmentAccepted(
            request_id=_field(answer, "requestId", str, f"POST {path}"),
            status=_field(answer, "status", str, f"POST {path}"),
        )

    def cancel_request(self, request_id: str, *, idempotency_key: str) -> CancelOutcome:
        """POST /v1/fulfilment-requests/{id}/cancel; 409 means it shipped already."""
        path = f"/v1/fulfilment-requests/{quote(request_id, safe='')}/cancel"
        response = self.client.request(
            "POST", path, json={}, idempotency_key=idempotency_key, accept=(409,)
        )
        answer = _json_object(response, f"POST {path}")
        status = _field(answer, "status", str, f"POST {path}")
        return CancelOutcome(cancelled=response.status_code != 409, status=status)

    def close(self) -> None:
        """Close the underlying client."""
        self.client.close()


class HttpInventoryPartner:
    """`InventoryPartner` over the WMS API (`/v1/stock-movements`, `/v1/stock/{sku}`)."""

    def __init__(self, client: PartnerHttpClient) -> None:
        self.client = client

    def record_move(self, move: StockMove, *, idempotency_key: str) -> StockFigure:
        """POST /v1/stock-movements; the WMS applies each key once."""
        body: dict[str, Any] = {
            "sku": move.sku,
            "kind": move.kind,
            "quantity": move.quantity,
            "reference": move.reference,
            "occurredAt": _iso(move.occurred_at),
        }
        if move.on_hand is not None:
            body["onHand"] = move.on_hand
        path = "/v1/stock-movements"
        response = self.client.request("POST", path, json=body, idempotency_key=idempotency_key)
        return _figure(_json_object(response, f"POST {path}"), f"POST {path}")

    def stock(self, sku: str) -> StockFigure | None:
        """GET /v1/stock/{sku}; None when the WMS does not know the SKU (404)."""
        path = f"/v1/stock/{quote(sku, safe='')}"
        response = self.client.request("GET", path, accept=(404,))
        if response.status_code == 404:
            return None
        return _figure(_json_object(response, f"GET {path}"), f"GET {path}")

    def close(self) -> None:
        """Close the underlying client."""
        self.client.close()


def _figure(answer: dict[str, Any], label: str) -> StockFigure:
    known = ("sku", "onHand", "sequence")
    return StockFigure(
        sku=_field(answer, "sku", str, label),
        on_hand=_field(answer, "onHand", int, label),
        sequence=_field(answer, "sequence", int, label),
        extra={k: v for k, v in answer.items() if k not in known},
    )


class HttpAccountingPartner:
    """`AccountingPartner` over the journal-import API (`/v1/journal-entries`,
    `/v1/trial-balance`)."""

    def __init__(self, client: PartnerHttpClient) -> None:
        self.client = client

    def post_entry(self, entry: JournalEntry, *, idempotency_key: str) -> str:
        """POST /v1/journal-entries; returns the journal id (a replayed key answers the id
        of the first import). An unbalanced or malformed entry raises PartnerRejected."""
        body = {
            "entryId": entry.entry_id,
            "at": entry.at,
            "currency": entry.currency,
            "sourceEvent": entry.source_event,
            "lines": [
                {"account": line.account, "debit": line.debit, "credit": line.credit}
                for line in entry.lines
            ],
        }
        path = "/v1/journal-entries"
        response = self.client.request("POST", path, json=body, idempotency_key=idempotency_key)
        label = f"POST {path}"
        journal_id: str = _field(_json_object(response, label), "journalId", str, label)
        return journal_id

    def trial_balance(self, currency: str) -> PartnerTrialBalance:
        """GET /v1/trial-balance?currency=...; a currency the books never saw has no
        accounts."""
        path = "/v1/trial-balance"
        label = f"GET {path}"
        response = self.client.request("GET", path, params={"currency": currency})
        answer = _json_object(response, label)
        answered = _field(answer, "currency", str, label)
        if answered != currency:
            # Comparing books in the wrong currency would report differences that are not.
            raise PartnerUnavailable(f"{label}: asked for {currency}, answered {answered}")
        accounts: dict[str, tuple[int, int]] = {}
        for item in _field(answer, "accounts", list, label):
            if not isinstance(item, dict):
                raise PartnerUnavailable(f"{label}: an account is not a JSON object")
            account = _field(item, "account", str, label)
            if account in accounts:
                raise PartnerUnavailable(f"{label}: account {account!r} appears twice")
            accounts[account] = (
                _field(item, "debit", int, label),
                _field(item, "credit", int, label),
            )
        return PartnerTrialBalance(currency=answered, accounts=accounts)

    def close(self) -> None:
        """Close the underlying client."""
        self.client.close()


MARKETING_CHANNELS = ("email", "sms", "whatsapp")
"""The channels the CRM is always told about; an unlisted one means no consent."""


class HttpCrmPartner:
    """`CrmPartner` over the contacts API (`/v1/contacts/{customerId}`)."""

    def __init__(self, client: PartnerHttpClient) -> None:
        self.client = client

    def upsert_contact(self, contact: Contact, *, idempotency_key: str) -> None:
        """PUT /v1/contacts/{customerId}: create or replace the contact (the CRM keeps the
        order figures). Channels missing from `contact.marketing` are sent as False."""
        body = {
            "customerId": contact.customer_id,
            "email": contact.email,
            "name": contact.name,
            "phone": contact.phone,
            "marketing": {
                **dict.fromkeys(MARKETING_CHANNELS, False),
                **contact.marketing,
            },
            "attributes": dict(contact.attributes),
        }
        self.client.request(
            "PUT", _contact_path(contact.customer_id), json=body, idempotency_key=idempotency_key
        )

    def update_order_stats(
        self, customer_id: str, stats: OrderStats, *, idempotency_key: str
    ) -> None:
        """PUT /v1/contacts/{customerId}/orders; PartnerRejected(404) when the CRM has no
        such contact."""
        body = {
            "orderCount": stats.order_count,
            "lifetimeValue": stats.lifetime_value,
            "currency": stats.currency,
            "lastOrderId": stats.last_order_id,
            "lastOrderAt": stats.last_order_at,
            "lastOrderStatus": stats.last_order_status,
        }
        path = _contact_path(customer_id) + "/orders"
        self.client.request("PUT", path, json=body, idempotency_key=idempotency_key)

    def delete_contact(self, customer_id: str, *, idempotency_key: str) -> None:
        """DELETE /v1/contacts/{customerId}; a contact the CRM does not hold (404) counts
        as deleted, so erasing twice, or before the contact was ever sent, succeeds."""
        self.client.request(
            "DELETE", _contact_path(customer_id), idempotency_key=idempotency_key, accept=(404,)
        )

    def close(self) -> None:
        """Close the underlying client."""
        self.client.close()


def _contact_path(customer_id: str) -> str:
    return f"/v1/contacts/{quote(customer_id, safe='')}"


# --- wiring -------------------------------------------------------------------------------


UNRESOLVED_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


@dataclass(frozen=True)
class _PartnerSettings:
    url: str | None
    api_key: str | None
    token_url: str | None
    client_id: str | None
    client_secret: str | None
    scope: str | None


def _partner_settings(settings: Settings, partner: PartnerName) -> _PartnerSettings:
    def secret(name: str) -> str | None:
        value = getattr(settings, f"{partner}_partner_{name}")
        text: str | None = value.get_secret_value() if value is not None else None
        if text and text.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
            # The app setting names a Key Vault secret that was never stored: the platform
            # passes the reference through as text, which must not reach the partner.
            logger.error("%s partner %s is an unresolved Key Vault reference", partner, name)
            return None
        return text

    def plain(name: str) -> str | None:
        value: str | None = getattr(settings, f"{partner}_partner_{name}")
        return value

    return _PartnerSettings(
        url=plain("url"),
        api_key=secret("api_key"),
        token_url=plain("token_url"),
        client_id=plain("client_id"),
        client_secret=secret("client_secret"),
        scope=plain("scope"),
    )


def auth_from_settings(settings: Settings, partner: PartnerName) -> PartnerAuth | None:
    """Client credentials when a token URL, client id and secret are set; else the API key
    when one is set; else None (no authentication)."""
    conf = _partner_settings(settings, partner)
    if conf.token_url and conf.client_id and conf.client_secret:
        return ClientCredentialsAuth(
            conf.token_url, conf.client_id, conf.client_secret, conf.scope or None
        )
    if conf.api_key:
        return ApiKeyAuth(conf.api_key)
    return None


def client_from_settings(
    settings: Settings,
    partner: PartnerName,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PartnerHttpClient | None:
    """The partner's client configured from settings, or None when its URL is unset."""
    conf = _partner_settings(settings, partner)
    if not conf.url:
        return None
    return PartnerHttpClient(
        conf.url,
        auth=auth_from_settings(settings, partner),
        timeout=settings.partner_timeout_seconds,
        max_attempts=settings.partner_max_attempts,
        max_retry_wait=settings.partner_max_retry_wait_seconds,
        transport=transport,
        sleep=sleep,
        name=f"{partner} partner",
    )


def fulfilment_partner_from_settings(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpFulfilmentPartner | None:
    """The fulfilment adapter, or None when FULFILMENT_PARTNER_URL is unset."""
    client = client_from_settings(settings, "fulfilment", transport=transport, sleep=sleep)
    return None if client is None else HttpFulfilmentPartner(client)


def inventory_partner_from_settings(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpInventoryPartner | None:
    """The WMS adapter, or None when INVENTORY_PARTNER_URL is unset."""
    client = client_from_settings(settings, "inventory", transport=transport, sleep=sleep)
    return None if client is None else HttpInventoryPartner(client)


def accounting_partner_from_settings(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpAccountingPartner | None:
    """The accounting adapter, or None when ACCOUNTING_PARTNER_URL is unset."""
    client = client_from_settings(settings, "accounting", transport=transport, sleep=sleep)
    return None if client is None else HttpAccountingPartner(client)


def crm_partner_from_settings(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpCrmPartner | None:
    """The CRM adapter, or None when CRM_PARTNER_URL is unset."""
    client = client_from_settings(settings, "crm", transport=transport, sleep=sleep)
    return None if client is None else HttpCrmPartner(client)
