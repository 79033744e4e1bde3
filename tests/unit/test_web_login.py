"""Unit tests of the web sign-in pieces: returnTo validation, cookie auth with CSRF, cookies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.api.problems import Problem
from cloudcart.core.settings import Settings
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import CurrentCustomer
from cloudcart.identity.dev_provider import mint_token
from cloudcart.identity.sessions import cookie_secure, csrf_matches, session_store
from cloudcart.identity.web_login import _http_session, validate_return_to

SETTINGS = Settings(
    public_base_url="https://shop.example",
    web_allowed_origins="https://app.example, http://localhost:3000",
)


@pytest.mark.parametrize(
    "value",
    [
        "/",
        "/account?tab=orders#top",
        "https://shop.example/cart",
        "https://SHOP.example:443/cart",
        "https://app.example/",
        "http://localhost:3000/x",
    ],
)
def test_return_to_accepts_own_paths_and_allowed_origins(value: str) -> None:
    assert validate_return_to(value, SETTINGS) == value


def test_return_to_defaults_to_root() -> None:
    assert validate_return_to(None, SETTINGS) == "/"
    assert validate_return_to("", SETTINGS) == "/"


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " /x",
        "https://shop.example@evil.example/",
        "https://app.example.evil.example/",
        "http://app.example/",  # right host, wrong scheme: a different origin
        "https://app.example:8443/",
        "javascript:alert(1)",
        "evil.example",
        "ftp://app.example/",
        "/" + "a" * 3000,
    ],
)
def test_return_to_rejects_other_origins_and_tricks(value: str) -> None:
    with pytest.raises(Problem) as caught:
        validate_return_to(value, SETTINGS)
    assert caught.value.status == 400


def test_csrf_compare() -> None:
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches("abc", None)
    assert not csrf_matches("", "")


@pytest.mark.parametrize(
    ("base", "secure"),
    [
        ("http://127.0.0.1:7071", False),
        ("http://localhost:7071", False),
        ("http://[::1]:7071", False),
        ("http://shop.example", True),
        ("http://10.0.0.5:7071", True),
        ("https://127.0.0.1:7071", True),
        ("https://shop.example", True),
    ],
)
def test_cookie_is_secure_except_plain_http_on_loopback(base: str, secure: bool) -> None:
    assert cookie_secure(Settings(public_base_url=base)) is secure


def test_msal_http_client_trusts_only_the_dev_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "bogus.pem"))
    settings = Settings(data_dir=tmp_path / "data")
    session = _http_session(settings)
    assert session.trust_env is False
    assert session.verify == str((tmp_path / "data" / "keys" / "dev-idp-tls-cert.pem").resolve())
    merged = session.merge_environment_settings("https://127.0.0.1:7072/", {}, None, None, None)
    assert merged["verify"] == session.verify


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(data_dir=tmp_path / "data", public_base_url="http://testserver")
    app = create_app(settings)

    @app.post("/test/echo")
    def echo(caller: CurrentCustomer) -> dict[str, str]:
        return {"customerId": caller.customer_id}

    @app.get("/test/echo")
    def echo_get(caller: CurrentCustomer) -> dict[str, str]:
        return {"customerId": caller.customer_id}

    with TestClient(app) as client:
        yield client, settings


def _session(settings: Settings, client: TestClient) -> tuple[str, str]:
    services = client.app.state.services  # type: ignore[attr-defined]
    store = session_store(services.documents, settings)
    caller = Caller("cust-1", "c@example.com", "C", (), ("shop.api",), "iss", False)
    session_id, session = store.create(caller, {"access_token": "x", "expires_in": 3600})
    return session_id, session.csrf_token


def test_cookie_auth_needs_csrf_on_unsafe_methods(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    session_id, csrf = _session(settings, client)
    cookie = {"Cookie": f"cloudcart_session={session_id}"}

    assert client.get("/test/echo", headers=cookie).json() == {"customerId": "cust-1"}
    missing = client.post("/test/echo", headers=cookie)
    assert missing.status_code == 403
    assert missing.json()["type"].endswith("/csrf-failed")
    wrong = client.post("/test/echo", headers={**cookie, "X-CSRF-Token": csrf + "x"})
    assert wrong.status_code == 403
    ok = client.post("/test/echo", headers={**cookie, "X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json() == {"customerId": "cust-1"}


def test_unknown_session_cookie_is_401(api: tuple[TestClient, Settings]) -> None:
    client, _ = api
    answer = client.get("/test/echo", headers={"Cookie": "cloudcart_session=made-up"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_bearer_needs_no_csrf_and_wins_over_a_cookie(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    token, _ = mint_token(settings, "bearer-1")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.post("/test/echo", headers=bearer).json() == {"customerId": "bearer-1"}
    session_id, _ = _session(settings, client)
    both = client.post(
        "/test/echo", headers={**bearer, "Cookie": f"cloudcart_session={session_id}"}
    )
    assert both.status_code == 200 and both.json() == {"customerId": "bearer-1"}


def test_deleted_session_no_longer_authenticates(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    session_id, _ = _session(settings, client)
    store = session_store(client.app.state.services.documents, settings)  # type: ignore[attr-defined]
    assert store.delete(session_id) is True
    assert store.get(session_id) is None
    answer = client.get("/test/echo", headers={"Cookie": f"cloudcart_session={session_id}"})
    assert answer.status_code == 401


def test_a_pending_flow_is_used_once(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    store = session_store(client.app.state.services.documents, settings)  # type: ignore[attr-defined]
    store.save_flow("state-1", {"msal": {"state": "state-1"}}, "/back")
    assert store.take_flow("state-1") == ({"msal": {"state": "state-1"}}, "/back")
    assert store.take_flow("state-1") is None
    assert store.take_flow("never-saved") is None


def test_all_sessions_of_a_customer_can_be_ended(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    first, _ = _session(settings, client)
    second, _ = _session(settings, client)
    store = session_store(client.app.state.services.documents, settings)  # type: ignore[attr-defined]
    other = Caller("cust-2", None, None, (), (), "iss", False)
    kept, _ = store.create(other, {})
    assert store.delete_for_customer("cust-1") == 2
    assert store.get(first) is None and store.get(second) is None
    assert store.get(kept) is not None


def test_serve_starts_no_https_provider_for_azure_identity(tmp_path: Path) -> None:
    from cloudcart.core.settings import Adapter
    from cloudcart.identity.dev_https import start_for_serve

    settings = Settings(data_dir=tmp_path / "data", identity_adapter=Adapter.azure)
    assert start_for_serve(settings, create_app(Settings(data_dir=tmp_path / "d2"))) is None
    assert not (tmp_path / "data" / "keys" / "dev-idp-tls-cert.pem").exists()
