"""The full local web sign-in: MSAL against the embedded provider over https, real servers.

Both listeners run in this process on free loopback ports: uvicorn serves the app over
http (the storefront's view) and `start_dev_idp_https` serves the same app over https
(MSAL's view of the provider). httpx plays the browser, following no redirect by itself
so every hop is checked.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_https import DevIdpHttpsServer, start_dev_idp_https
from cloudcart.identity.dev_provider import DEV_WEB_CLIENT_ID, DEV_WEB_CLIENT_SECRET

pytestmark = pytest.mark.e2e

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    base_url: str
    idp_url: str
    cert_path: Path
    settings: Settings


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    http_port, https_port = _free_port(), _free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        public_base_url=f"http://127.0.0.1:{http_port}",
        dev_idp_https_port=https_port,
        web_allowed_origins="http://localhost:3000",
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=http_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "http server did not start"
        time.sleep(0.02)
    idp: DevIdpHttpsServer = start_dev_idp_https(settings, app)
    try:
        yield Stack(settings.public_base_url, idp.base_url, idp.cert_path, settings)
    finally:
        idp.stop()
        server.should_exit = True
        thread.join(10)


def _trust(stack: Stack) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(stack.cert_path))


def _browser(stack: Stack) -> httpx.Client:
    # verify= the provider's own certificate, exactly like the app's MSAL client.
    return httpx.Client(
        base_url=stack.base_url, follow_redirects=False, timeout=20.0, verify=_trust(stack)
    )


def _sign_in_at_provider(
    browser: httpx.Client, authorize_url: str, email: str, name: str
) -> httpx.Response:
    """Open the provider's sign-in page and submit the "new test customer" form."""
    page = browser.get(authorize_url)
    assert page.status_code == 200, page.text
    assert "text/html" in page.headers["content-type"]
    fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
    assert {"state", "code_challenge", "redirect_uri", "nonce"} <= set(fields)
    form_action = urllib.parse.urljoin(authorize_url, "authorize")
    return browser.post(form_action, data={**fields, "email": email, "name": name, "create": "1"})


def _start_login(browser: httpx.Client, stack: Stack, return_to: str = "/api/me") -> str:
    login = browser.get("/auth/login", params={"returnTo": return_to})
    assert login.status_code == 302, login.text
    location = login.headers["location"]
    assert location.startswith(f"{stack.idp_url}/dev/idp/authorize?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    return location


def test_full_sign_in_flow_with_session_cookie_csrf_and_logout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A machine-wide CA bundle must not decide whom the MSAL client trusts.
    bogus = tmp_path / "no-such-ca-bundle.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bogus))
    with _browser(stack) as browser:
        authorize_url = _start_login(browser, stack)
        submitted = _sign_in_at_provider(browser, authorize_url, "ada@example.com", "Ada")
        assert submitted.status_code == 302, submitted.text
        callback = submitted.headers["location"]
        assert callback.startswith(f"{stack.base_url}/auth/callback?")
        assert "code=" in callback and "state=" in callback

        landed = browser.get(callback)
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/api/me"
        set_cookie = landed.headers["set-cookie"]
        assert set_cookie.startswith("cloudcart_session=")
        assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
        assert "Path=/" in set_cookie
        session_id = browser.cookies["cloudcart_session"]
        assert len(session_id) >= 40

        me = browser.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "ada@example.com"
        assert me.json()["name"] == "Ada"
        customer_id = me.json()["customerId"]

        session = browser.get("/auth/session")
        assert session.status_code == 200
        info = session.json()
        assert info["customerId"] == customer_id and info["email"] == "ada@example.com"
        csrf = info["csrfToken"]

        # The same callback again is a replay: its pending flow was used up.
        replay = browser.get(callback)
        assert replay.status_code == 400
        assert replay.json()["type"].endswith("/sign-in-invalid")

        no_csrf = browser.post("/auth/logout")
        assert no_csrf.status_code == 403
        assert no_csrf.headers["content-type"].startswith("application/problem+json")
        assert no_csrf.json()["type"].endswith("/csrf-failed")
        assert browser.get("/api/me").status_code == 200  # still signed in

        out = browser.post("/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200, out.text
        assert out.json()["signedOut"] is True
        assert out.json()["endSessionUrl"].startswith(f"{stack.idp_url}/dev/idp/logout?")
        assert (
            'cloudcart_session=""' in out.headers["set-cookie"]
            or "Max-Age=0" in out.headers["set-cookie"]
        )

        # Even a client that kept the old cookie is out: the session is gone server-side.
        browser.cookies.set("cloudcart_session", session_id)
        assert browser.get("/api/me").status_code == 401
        assert browser.get("/auth/session").status_code == 401


def test_existing_test_customer_can_sign_in_again(stack: Stack) -> None:
    with _browser(stack) as browser:
        first = _sign_in_at_provider(browser, _start_login(browser, stack), "bo@example.com", "Bo")
        assert browser.get(first.headers["location"]).status_code == 303
        first_id = browser.get("/api/me").json()["customerId"]
    with _browser(stack) as browser:
        page = browser.get(_start_login(browser, stack))
        assert "bo@example.com" in page.text
        fields = dict(_HIDDEN.findall(page.text))
        fields = {html.unescape(k): html.unescape(v) for k, v in fields.items()}
        chosen = browser.post(
            f"{stack.idp_url}/dev/idp/authorize", data={**fields, "customer": first_id}
        )
        assert chosen.status_code == 302
        assert browser.get(chosen.headers["location"]).status_code == 303
        assert browser.get("/api/me").json()["customerId"] == first_id


def test_return_to_a_foreign_origin_is_refused(stack: Stack) -> None:
    with _browser(stack) as browser:
        for target in ("https://evil.example/x", "//evil.example", "/\\evil.example"):
            answer = browser.get("/auth/login", params={"returnTo": target})
            assert answer.status_code == 400, target
            assert answer.json()["type"].endswith("/invalid-return-to")
        allowed = browser.get("/auth/login", params={"returnTo": "http://localhost:3000/cart"})
        assert allowed.status_code == 302


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _code(idp: httpx.Client, stack: Stack, challenge: str) -> tuple[str, str]:
    redirect_uri = f"{stack.base_url}/auth/callback"
    answer = idp.post(
        "/dev/idp/authorize",
        data={
            "client_id": DEV_WEB_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "openid api://cloudcart/shop.api",
            "state": "s1",
            "nonce": "n1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "email": "pk@example.com",
            "name": "Pk",
        },
    )
    assert answer.status_code == 302, answer.text
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0], redirect_uri


def test_provider_checks_the_pkce_verifier(stack: Stack) -> None:
    verifier, challenge = _pkce_pair()
    with httpx.Client(base_url=stack.idp_url, verify=_trust(stack), timeout=20) as idp:
        code, redirect_uri = _code(idp, stack, challenge)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": DEV_WEB_CLIENT_ID,
            "client_secret": DEV_WEB_CLIENT_SECRET,
        }
        # Another last character, whatever the random verifier ends with.
        wrong = verifier[:-1] + ("B" if verifier.endswith("A") else "A")
        tampered = idp.post("/dev/idp/token", data={**form, "code_verifier": wrong})
        assert tampered.status_code == 400
        assert tampered.json()["error"] == "invalid_grant"
        # The code was burnt by the failed attempt, even with the right verifier now.
        again = idp.post("/dev/idp/token", data={**form, "code_verifier": verifier})
        assert again.status_code == 400

        verifier, challenge = _pkce_pair()
        code, _ = _code(idp, stack, challenge)
        good = idp.post("/dev/idp/token", data={**form, "code": code, "code_verifier": verifier})
        assert good.status_code == 200, good.text
        tokens = good.json()
        assert {"access_token", "id_token", "refresh_token", "expires_in"} <= set(tokens)

        refreshed = idp.post(
            "/dev/idp/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": DEV_WEB_CLIENT_ID,
                "client_secret": DEV_WEB_CLIENT_SECRET,
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        wrong_secret = idp.post(
            "/dev/idp/token", data={**form, "client_secret": "nope", "code_verifier": verifier}
        )
        assert wrong_secret.status_code == 401

    # The browser-flow access token is valid for the API like any bearer token.
    with httpx.Client(base_url=stack.base_url, timeout=20) as api:
        me = api.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "pk@example.com"


def test_bearer_tokens_still_work_and_need_no_csrf(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=20) as api:
        minted = api.post("/dev/idp/token", data={"sub": "mobile-1", "email": "m@example.com"})
        assert minted.status_code == 200, minted.text
        token = minted.json()["access_token"]
        me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["customerId"] == "mobile-1"
