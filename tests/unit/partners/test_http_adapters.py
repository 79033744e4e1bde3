"""The partner HTTP adapters against a recording fake: auth, retries, idempotency keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import SecretStr

from cloudcart.core.ports.partners import (
    CancelOutcome,
    FulfilmentAccepted,
    FulfilmentRequest,
    PartnerLine,
    PartnerRejected,
    PartnerUnavailable,
    StockFigure,
    StockMove,
)
from cloudcart.core.settings import Settings
from cloudcart.core.throttling import retry_after_seconds
from cloudcart.integrations.partners.http import (
    ApiKeyAuth,
    ClientCredentialsAuth,
    HttpFulfilmentPartner,
    HttpInventoryPartner,
    PartnerAuth,
    PartnerHttpClient,
    fulfilment_partner_from_settings,
    inventory_partner_from_settings,
)
from tests.fakes.partner_api import FakePartnerApi, Scripted, running_partner_api

CREATE = "/v1/fulfilment-requests"
MOVES = "/v1/stock-movements"
ACCEPTED = Scripted(201, json={"requestId": "fr-1", "orderId": "ord-1", "status": "accepted"})
REQUEST = FulfilmentRequest(
    order_id="ord-1",
    lines=(PartnerLine("SKU-1", 2), PartnerLine("SKU-2", 1)),
    shipping_address={"name": "Ada", "line1": "1 Loop St", "city": "Pune", "country": "IN"},
    shipping_method="standard",
    currency="INR",
    placed_at="2030-01-01T12:00:00Z",
)


class Clock:
    """A monotonic clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[FakePartnerApi]:
    with running_partner_api() as fake:
        yield fake


@pytest.fixture
def waits() -> list[float]:
    return []


def _client(
    api: FakePartnerApi,
    waits: list[float],
    *,
    auth: PartnerAuth | None = None,
    timeout: float = 5.0,
    max_attempts: int = 4,
    max_retry_wait: float = 10.0,
    base_url: str | None = None,
) -> PartnerHttpClient:
    return PartnerHttpClient(
        base_url or api.base_url,
        auth=auth,
        timeout=timeout,
        max_attempts=max_attempts,
        max_retry_wait=max_retry_wait,
        sleep=waits.append,
        name="fulfilment partner",
    )


def _oauth(api: FakePartnerApi, clock: Clock | None = None, scope: str | None = None) -> Any:
    return ClientCredentialsAuth(
        api.token_url, api.client_id, api.client_secret, scope, clock=clock or Clock()
    )


# --- requests and answers -----------------------------------------------------------------


def test_create_sends_the_request_in_camel_case_with_the_key(api, waits) -> None:
    api.script("POST", CREATE, ACCEPTED)
    partner = HttpFulfilmentPartner(_client(api, waits))

    accepted = partner.create_request(REQUEST, idempotency_key="ord-1:fulfil")

    assert accepted == FulfilmentAccepted(request_id="fr-1", status="accepted")
    [request] = api.requests_to("POST", CREATE)
    assert request.header("Idempotency-Key") == "ord-1:fulfil"
    assert request.header("Content-Type") == "application/json"
    assert request.body == {
        "orderId": "ord-1",
        "lines": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
        "shippingAddress": {"name": "Ada", "line1": "1 Loop St", "city": "Pune", "country": "IN"},
        "shippingMethod": "standard",
        "currency": "INR",
        "placedAt": "2030-01-01T12:00:00Z",
    }


def test_cancel_answers_cancelled_or_kept_after_shipping(api, waits) -> None:
    path = "/v1/fulfilment-requests/fr%2F1/cancel"
    api.script("POST", path, Scripted(200, json={"requestId": "fr/1", "status": "cancelled"}))
    api.script("POST", path, Scripted(409, json={"requestId": "fr/1", "status": "shipped"}))
    partner = HttpFulfilmentPartner(_client(api, waits))

    first = partner.cancel_request("fr/1", idempotency_key="c-1")
    second = partner.cancel_request("fr/1", idempotency_key="c-2")

    assert first == CancelOutcome(cancelled=True, status="cancelled")
    assert second == CancelOutcome(cancelled=False, status="shipped")
    assert [r.header("Idempotency-Key") for r in api.requests_to("POST", path)] == ["c-1", "c-2"]
    assert waits == []


def test_inventory_move_and_figures(api, waits) -> None:
    api.script(
        "POST", MOVES, Scripted(200, json={"sku": "A", "onHand": 7, "reserved": 2, "sequence": 5})
    )
    api.script("GET", "/v1/stock/A", Scripted(200, json={"sku": "A", "onHand": 7, "sequence": 5}))
    api.script("GET", "/v1/stock/B", Scripted(404, json={"detail": "unknown SKU"}))
    partner = HttpInventoryPartner(_client(api, waits))
    move = StockMove(
        sku="A",
        kind="set",
        quantity=0,
        reference="admin:42",
        occurred_at=datetime(2030, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=1))),
        on_hand=7,
    )

    figure = partner.record_move(move, idempotency_key="mv-1")

    assert figure == StockFigure(sku="A", on_hand=7, sequence=5, extra={"reserved": 2})
    [request] = api.requests_to("POST", MOVES)
    assert request.body == {
        "sku": "A",
        "kind": "set",
        "quantity": 0,
        "reference": "admin:42",
        "occurredAt": "2030-01-01T12:30:00Z",
        "onHand": 7,
    }
    assert request.header("Idempotency-Key") == "mv-1"
    assert partner.stock("A") == StockFigure(sku="A", on_hand=7, sequence=5)
    assert partner.stock("B") is None


def test_an_unreadable_answer_is_unavailable(api, waits) -> None:
    api.script("POST", CREATE, Scripted(201, json=["not", "an", "object"]))
    partner = HttpFulfilmentPartner(_client(api, waits))

    with pytest.raises(PartnerUnavailable, match="not a JSON object"):
        partner.create_request(REQUEST, idempotency_key="k")


# --- authentication ------------------------------------------------------------------------


def test_api_key_goes_in_the_x_api_key_header() -> None:
    with running_partner_api(api_key="key-123") as api:
        api.script("POST", CREATE, ACCEPTED)
        partner = HttpFulfilmentPartner(_client(api, [], auth=ApiKeyAuth("key-123")))

        partner.create_request(REQUEST, idempotency_key="k")

        [request] = api.requests_to("POST", CREATE)
        assert request.header("X-Api-Key") == "key-123"
        assert request.header("Authorization") is None


def test_a_wrong_api_key_is_rejected_at_once() -> None:
    waits: list[float] = []
    with running_partner_api(api_key="right") as api:
        partner = HttpFulfilmentPartner(_client(api, waits, auth=ApiKeyAuth("wrong")))

        with pytest.raises(PartnerRejected) as caught:
            partner.create_request(REQUEST, idempotency_key="k")

        assert caught.value.status == 401
        assert "X-Api-Key" in caught.value.detail
        assert len(api.requests_to("POST", CREATE)) == 1
        assert waits == []


def test_oauth_token_is_fetched_once_and_reused() -> None:
    with running_partner_api(require_bearer=True) as api:
        api.script("POST", CREATE, ACCEPTED, ACCEPTED, ACCEPTED)
        auth = _oauth(api, scope="fulfilment.write")
        partner = HttpFulfilmentPartner(_client(api, [], auth=auth))

        for n in range(3):
            partner.create_request(REQUEST, idempotency_key=f"k-{n}")

        [token_request] = api.token_requests
        assert token_request.body == {
            "grant_type": "client_credentials",
            "client_id": "cloudcart",
            "client_secret": "s3cret",
            "scope": "fulfilment.write",
        }
        assert token_request.header("Content-Type") == "application/x-www-form-urlencoded"
        calls = api.requests_to("POST", CREATE)
        assert [r.header("Authorization") for r in calls] == ["Bearer tok-1"] * 3
        assert auth.fetches == 1


def test_no_scope_is_sent_when_none_is_configured(api, waits) -> None:
    partner = HttpInventoryPartner(_client(api, waits, auth=_oauth(api)))
    api.script("GET", "/v1/stock/A", Scripted(200, json={"sku": "A", "onHand": 1, "sequence": 1}))

    partner.stock("A")

    [token_request] = api.token_requests
    assert "scope" not in token_request.body


def test_oauth_token_is_renewed_shortly_before_it_expires() -> None:
    clock = Clock()
    with running_partner_api(require_bearer=True, expires_in=60) as api:
        api.script("POST", CREATE, ACCEPTED, ACCEPTED, ACCEPTED)
        partner = HttpFulfilmentPartner(_client(api, [], auth=_oauth(api, clock)))

        partner.create_request(REQUEST, idempotency_key="k-1")
        clock.now += 50  # still well inside the lifetime
        partner.create_request(REQUEST, idempotency_key="k-2")
        clock.now += 5  # 55 s: inside the renewal margin before 60 s
        partner.create_request(REQUEST, idempotency_key="k-3")

        assert api.issued_tokens == ["tok-1", "tok-2"]
        calls = api.requests_to("POST", CREATE)
        assert [r.header("Authorization") for r in calls] == [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2",
        ]


def test_a_401_renews_the_token_once_and_repeats_the_call() -> None:
    waits: list[float] = []
    with running_partner_api(require_bearer=True) as api:
        api.script("POST", CREATE, ACCEPTED, ACCEPTED)
        partner = HttpFulfilmentPartner(_client(api, waits, auth=_oauth(api)))
        partner.create_request(REQUEST, idempotency_key="k-1")
        api.revoke_tokens()  # e.g. the partner rotated its signing keys

        accepted = partner.create_request(REQUEST, idempotency_key="k-2")

        assert accepted.request_id == "fr-1"
        second_call = api.requests_to("POST", CREATE)[1:]
        assert [r.header("Authorization") for r in second_call] == [
            "Bearer tok-1",
            "Bearer tok-2",
        ]
        assert [r.header("Idempotency-Key") for r in second_call] == ["k-2", "k-2"]
        assert len(api.token_requests) == 2
        assert waits == []


def test_a_401_with_a_fresh_token_is_final() -> None:
    with running_partner_api(require_bearer=True) as api:
        auth = _oauth(api)
        partner = HttpFulfilmentPartner(_client(api, [], auth=auth))
        api.accept_tokens = False  # the partner refuses this client whatever its token

        with pytest.raises(PartnerRejected) as caught:
            partner.create_request(REQUEST, idempotency_key="k")

        assert caught.value.status == 401
        assert len(api.requests_to("POST", CREATE)) == 2
        assert len(api.token_requests) == 2


def test_concurrent_calls_share_one_token_request() -> None:
    with running_partner_api(
        require_bearer=True,
        token_delay=0.2,  # the other callers arrive while the first token is on its way
        default=Scripted(200, json={"sku": "A", "onHand": 1, "sequence": 1}),
    ) as api:
        partner = HttpInventoryPartner(_client(api, [], auth=_oauth(api)))
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def call() -> None:
            start.wait()
            try:
                partner.stock("A")
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

        assert errors == []
        assert len(api.token_requests) == 1
        assert len(api.requests_to("GET", "/v1/stock/A")) == 8


def test_token_endpoint_failures_are_retried_or_rejected(api, waits) -> None:
    api.script("POST", "/oauth2/token", Scripted(503, {"Retry-After": "1"}, {"error": "busy"}))
    api.script("GET", "/v1/stock/A", Scripted(200, json={"sku": "A", "onHand": 1, "sequence": 1}))
    partner = HttpInventoryPartner(_client(api, waits, auth=_oauth(api)))

    assert partner.stock("A") is not None
    assert waits == [1.0]

    bad = ClientCredentialsAuth(api.token_url, "cloudcart", "wrong", clock=Clock())
    with pytest.raises(PartnerRejected) as caught:
        HttpInventoryPartner(_client(api, waits, auth=bad)).stock("A")
    assert caught.value.status == 401
    assert "token endpoint" in caught.value.detail


# --- retries -----------------------------------------------------------------------------


def test_retry_after_in_seconds_is_honoured(api, waits) -> None:
    api.script(
        "POST",
        CREATE,
        Scripted(503, {"Retry-After": "2"}),
        Scripted(429, {"Retry-After": "3"}, {"detail": "slow down"}),
        ACCEPTED,
    )
    partner = HttpFulfilmentPartner(_client(api, waits))

    assert partner.create_request(REQUEST, idempotency_key="k").request_id == "fr-1"
    assert waits == [2.0, 3.0]


def test_retry_after_as_an_http_date_is_honoured(api, waits) -> None:
    when = datetime.now(UTC) + timedelta(seconds=4)
    api.script("POST", CREATE, Scripted(503, {"Retry-After": format_datetime(when, True)}))
    api.script("POST", CREATE, ACCEPTED)
    partner = HttpFulfilmentPartner(_client(api, waits))

    partner.create_request(REQUEST, idempotency_key="k")

    [wait] = waits
    # The date has whole seconds: between 3 and 4 seconds from when it was read.
    assert 2.0 <= wait <= 4.0


def test_retry_after_is_capped_by_the_longest_wait(api, waits) -> None:
    api.script("POST", CREATE, Scripted(503, {"Retry-After": "120"}), ACCEPTED)
    partner = HttpFulfilmentPartner(_client(api, waits, max_retry_wait=5.0))

    partner.create_request(REQUEST, idempotency_key="k")

    assert waits == [5.0]


def test_backoff_without_retry_after_is_jittered_exponential_and_capped(api, waits) -> None:
    client = _client(api, waits, max_attempts=4, max_retry_wait=1.5)
    partner = HttpFulfilmentPartner(client)
    for _ in range(20):
        api.script("POST", CREATE, Scripted(500), Scripted(502), Scripted(504), ACCEPTED)
        partner.create_request(REQUEST, idempotency_key="k")
    # Full jitter within windows of 0.5 s, 1 s, then 2 s capped at 1.5 s.
    rounds = [waits[i : i + 3] for i in range(0, len(waits), 3)]
    assert len(rounds) == 20
    for first, second, third in rounds:
        assert 0 <= first <= 0.5
        assert 0 <= second <= 1.0
        assert 0 <= third <= 1.5
    assert len(set(waits)) > 10  # jittered, not fixed


def test_retry_limit_raises_unavailable_naming_the_last_status(api, waits) -> None:
    api.script("POST", CREATE, Scripted(502), Scripted(503), Scripted(504))
    partner = HttpFulfilmentPartner(_client(api, waits, max_attempts=3))

    with pytest.raises(PartnerUnavailable) as caught:
        partner.create_request(REQUEST, idempotency_key="k")

    assert "504" in str(caught.value)
    assert "attempt 3 of 3" in str(caught.value)
    assert len(api.requests_to("POST", CREATE)) == 3
    assert len(waits) == 2


@pytest.mark.parametrize("status", [408, 429, 500, 503, 599])
def test_these_statuses_are_retried(api, waits, status: int) -> None:
    api.script("POST", CREATE, Scripted(status), ACCEPTED)
    partner = HttpFulfilmentPartner(_client(api, waits))

    partner.create_request(REQUEST, idempotency_key="k")

    assert len(api.requests_to("POST", CREATE)) == 2
    assert len(waits) == 1


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            Scripted(
                422,
                {"Content-Type": "application/problem+json"},
                {"type": "about:blank", "status": 422, "detail": "lines[0].sku is unknown"},
            ),
            "lines[0].sku is unknown",
        ),
        (Scripted(400, json={"detail": "the Idempotency-Key header is required"}), None),
        (Scripted(403, json={"title": "Forbidden"}), "Forbidden"),
        (Scripted(404), "Not Found"),
        (Scripted(409, json={"message": "conflict"}), "conflict"),
    ],
)
def test_other_4xx_are_rejected_without_retry(
    api, waits, answer: Scripted, detail: str | None
) -> None:
    api.script("POST", CREATE, answer)
    partner = HttpFulfilmentPartner(_client(api, waits))

    with pytest.raises(PartnerRejected) as caught:
        partner.create_request(REQUEST, idempotency_key="k")

    assert caught.value.status == answer.status
    assert caught.value.detail == (detail or answer.json["detail"])
    assert len(api.requests_to("POST", CREATE)) == 1
    assert waits == []


def test_the_idempotency_key_is_identical_on_every_retry(api, waits) -> None:
    api.script("POST", CREATE, Scripted(503), Scripted(500), ACCEPTED)
    partner = HttpFulfilmentPartner(_client(api, waits))

    partner.create_request(REQUEST, idempotency_key="ord-1:fulfil")

    keys = [r.header("Idempotency-Key") for r in api.requests_to("POST", CREATE)]
    assert keys == ["ord-1:fulfil"] * 3


def test_a_post_without_a_key_gets_one_reused_by_its_retries(api, waits) -> None:
    api.script("POST", "/v1/anything", Scripted(503), Scripted(200, json={}))
    client = _client(api, waits)

    client.request("POST", "/v1/anything", json={})

    keys = {r.header("Idempotency-Key") for r in api.requests_to("POST", "/v1/anything")}
    assert len(keys) == 1
    assert None not in keys


def test_a_read_timeout_is_retried(api, waits) -> None:
    api.script("POST", CREATE, Scripted(201, json=ACCEPTED.json, delay=1.0), ACCEPTED)
    partner = HttpFulfilmentPartner(_client(api, waits, timeout=0.2))

    assert partner.create_request(REQUEST, idempotency_key="k").request_id == "fr-1"

    keys = [r.header("Idempotency-Key") for r in api.requests_to("POST", CREATE)]
    assert keys == ["k", "k"]
    assert len(waits) == 1


def test_timeouts_until_the_last_attempt_are_unavailable(api, waits) -> None:
    slow = Scripted(201, json=ACCEPTED.json, delay=0.5)
    api.script("POST", CREATE, slow, slow)
    partner = HttpFulfilmentPartner(_client(api, waits, timeout=0.1, max_attempts=2))

    with pytest.raises(PartnerUnavailable, match="ReadTimeout"):
        partner.create_request(REQUEST, idempotency_key="k")


def test_connection_errors_are_retried_then_unavailable(api, waits) -> None:
    # A port nobody listens on: bind one, note it, close it.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    partner = HttpFulfilmentPartner(
        _client(api, waits, base_url=f"http://127.0.0.1:{port}", max_attempts=3)
    )

    with pytest.raises(PartnerUnavailable, match="ConnectError") as caught:
        partner.create_request(REQUEST, idempotency_key="k")

    assert "attempt 3 of 3" in str(caught.value)
    assert len(waits) == 2


def test_retry_after_parsing() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds({"Retry-After": "7"}, now=now) == 7.0
    assert retry_after_seconds({"Retry-After": "Tue, 01 Jan 2030 12:00:09 GMT"}, now=now) == 9.0
    assert retry_after_seconds({"Retry-After": "Tue, 01 Jan 2030 11:00:00 GMT"}, now=now) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}, now=now) is None
    assert retry_after_seconds({}, now=now) is None


# --- wiring from settings ------------------------------------------------------------------


def test_no_url_means_no_adapter() -> None:
    settings = Settings()
    assert fulfilment_partner_from_settings(settings) is None
    assert inventory_partner_from_settings(settings) is None


def test_settings_pick_the_auth(api) -> None:
    oauth = fulfilment_partner_from_settings(
        Settings(
            fulfilment_partner_url=api.base_url,
            fulfilment_partner_api_key=SecretStr("ignored-when-oauth-is-set"),
            fulfilment_partner_token_url=api.token_url,
            fulfilment_partner_client_id="cloudcart",
            fulfilment_partner_client_secret=SecretStr("s3cret"),
            fulfilment_partner_scope="fulfilment",
        )
    )
    keyed = inventory_partner_from_settings(
        Settings(inventory_partner_url=api.base_url, inventory_partner_api_key=SecretStr("k-1"))
    )
    half_oauth = inventory_partner_from_settings(
        Settings(
            inventory_partner_url=api.base_url,
            inventory_partner_token_url=api.token_url,
            inventory_partner_api_key=SecretStr("k-2"),
        )
    )
    bare = inventory_partner_from_settings(Settings(inventory_partner_url=api.base_url))
    assert oauth is not None and keyed is not None and half_oauth is not None
    assert bare is not None
    assert isinstance(oauth.client.auth, ClientCredentialsAuth)
    assert oauth.client.auth.scope == "fulfilment"
    assert isinstance(keyed.client.auth, ApiKeyAuth)
    assert isinstance(half_oauth.client.auth, ApiKeyAuth)
    assert bare.client.auth is None
    for partner in (oauth, keyed, half_oauth, bare):
        partner.close()


def test_settings_adapter_uses_the_configured_limits_and_credentials(api, waits) -> None:
    api.script("POST", CREATE, Scripted(503), Scripted(503))
    partner = fulfilment_partner_from_settings(
        Settings(
            fulfilment_partner_url=api.base_url + "/",
            fulfilment_partner_token_url=api.token_url,
            fulfilment_partner_client_id="cloudcart",
            fulfilment_partner_client_secret=SecretStr("s3cret"),
            partner_max_attempts=2,
            partner_max_retry_wait_seconds=0.25,
        ),
        sleep=waits.append,
    )
    assert partner is not None

    with pytest.raises(PartnerUnavailable, match="attempt 2 of 2"):
        partner.create_request(REQUEST, idempotency_key="k")

    assert len(waits) == 1 and 0 <= waits[0] <= 0.25
    assert [r.header("Authorization") for r in api.requests_to("POST", CREATE)] == [
        "Bearer tok-1",
        "Bearer tok-1",
    ]
    partner.close()
