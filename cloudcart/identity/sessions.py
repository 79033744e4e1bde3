"""Server-side web sessions and pending sign-in flows, kept in the `sessions` container.

The browser only ever holds an opaque random session id. The stored document is keyed by
the SHA-256 of that id, so someone who can read the database (a backup, a support export)
still cannot replay a live cookie. Pending MSAL auth-code flows (they hold the PKCE
verifier and nonce) are keyed by their `state` and deleted when used, which makes a
replayed callback fail.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from cloudcart.core.errors import NotFound
from cloudcart.core.ports.documents import DocumentStore
from cloudcart.core.settings import Settings
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import SESSION_COOKIE as SESSION_COOKIE

CSRF_HEADER = "X-CSRF-Token"
CONTAINER = "sessions"
FLOW_TTL_SECONDS = 600
"""A sign-in page left open longer than this has to start again."""

_SESSION_KIND = "web-session"
_FLOW_KIND = "auth-flow"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser session as stored server-side."""

    caller: Caller
    csrf_token: str
    expires_at: int
    access_token: str | None
    document: dict[str, Any]


def _session_doc_id(session_id: str) -> str:
    return "s-" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _flow_doc_id(state: str) -> str:
    return "f-" + hashlib.sha256(state.encode("utf-8")).hexdigest()


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of the session's CSRF token with the presented one."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def cookie_secure(settings: Settings) -> bool:
    """Whether the session cookie carries `Secure`.

    Always, except when the app itself is reached over plain http on a loopback address
    (`cloudcart serve` on 127.0.0.1): browsers drop Secure cookies set over http, so local
    sign-in would silently lose its session. Loopback traffic never leaves the machine, so
    there is nothing on the wire to protect.
    """
    parsed = urllib.parse.urlsplit(settings.public_base_url)
    if parsed.scheme != "http":
        return True
    host = (parsed.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class SessionStore:
    """Creates, reads and ends web sessions and pending sign-in flows."""

    def __init__(self, documents: DocumentStore, settings: Settings) -> None:
        """Sessions live in the registry's `sessions` container of `documents`."""
        self._container = documents.container(CONTAINER)
        self._ttl = settings.web_session_ttl_seconds

    # --- pending flows --------------------------------------------------------------------

    def save_flow(self, state: str, flow: dict[str, Any], return_to: str) -> None:
        """Keep MSAL's auth-code flow (PKCE verifier, nonce) until the callback comes back."""
        self._container.create(
            {
                "id": _flow_doc_id(state),
                "kind": _FLOW_KIND,
                "flow": flow,
                "returnTo": return_to,
                "expiresAt": int(time.time()) + FLOW_TTL_SECONDS,
                "ttl": FLOW_TTL_SECONDS,
            }
        )

    def take_flow(self, state: str) -> tuple[dict[str, Any], str] | None:
        """The flow saved under `state`, removed so it can be used once; None when unknown,
        expired or already used."""
        doc_id = _flow_doc_id(state)
        try:
            doc = self._container.read(doc_id, doc_id)
            # Whoever deletes first wins: a concurrent replay gets NotFound here.
            self._container.delete(doc_id, doc_id, if_match=doc.get("_etag"))
        except NotFound:
            return None
        if doc.get("kind") != _FLOW_KIND or int(doc.get("expiresAt", 0)) < time.time():
            return None
        return doc["flow"], str(doc["returnTo"])

    # --- sessions -------------------------------------------------------------------------

    def create(self, caller: Caller, tokens: dict[str, Any]) -> tuple[str, WebSession]:
        """Start a session for `caller`; returns the opaque id for the cookie and the session."""
        session_id = secrets.token_urlsafe(32)
        now = int(time.time())
        expires_in = tokens.get("expires_in")
        doc: dict[str, Any] = {
            "id": _session_doc_id(session_id),
            "kind": _SESSION_KIND,
            "customerId": caller.customer_id,
            "claims": {
                "email": caller.email,
                "name": caller.name,
                "roles": list(caller.roles),
                "scopes": list(caller.scopes),
                "issuer": caller.issuer,
                "isAdmin": caller.is_admin,
            },
            "tokens": {
                "accessToken": tokens.get("access_token"),
                "refreshToken": tokens.get("refresh_token"),
                "accessTokenExpiresAt": now + int(expires_in)
                if isinstance(expires_in, int | str) and str(expires_in).isdigit()
                else None,
            },
            "csrfToken": secrets.token_urlsafe(32),
            "createdAt": now,
            "lastSeenAt": now,
            "expiresAt": now + self._ttl,
            "ttl": self._ttl,
        }
        stored = self._container.create(doc)
        return session_id, _to_session(stored)

    def get(self, session_id: str) -> WebSession | None:
        """The live session of that cookie value; None when unknown or expired."""
        if not session_id or len(session_id) > 256:
            return None
        doc_id = _session_doc_id(session_id)
        try:
            doc = self._container.read(doc_id, doc_id)
        except NotFound:
            return None
        # The store's TTL purge may lag; the session's own expiry is what counts.
        if doc.get("kind") != _SESSION_KIND or int(doc.get("expiresAt", 0)) <= time.time():
            return None
        return _to_session(doc)

    def delete_for_customer(self, customer_id: str) -> int:
        """End every session of a customer (erasure, "sign out everywhere"); returns how many."""
        from cloudcart.core.ports.documents import Filter, Query

        ended = 0
        query = Query(
            filters=(Filter("kind", "eq", _SESSION_KIND), Filter("customerId", "eq", customer_id))
        )
        continuation: str | None = None
        while True:
            page = self._container.query(query, continuation=continuation)
            for doc in page.items:
                try:
                    self._container.delete(doc["id"], doc["id"])
                    ended += 1
                except NotFound:
                    pass
            continuation = page.continuation
            if continuation is None:
                return ended

    def delete(self, session_id: str) -> bool:
        """End a session; False when there was none."""
        doc_id = _session_doc_id(session_id)
        try:
            self._container.delete(doc_id, doc_id)
        except NotFound:
            return False
        return True


def _to_session(doc: dict[str, Any]) -> WebSession:
    claims = doc.get("claims", {})
    tokens = doc.get("tokens", {})
    caller = Caller(
        customer_id=str(doc["customerId"]),
        email=claims.get("email"),
        name=claims.get("name"),
        roles=tuple(claims.get("roles", ())),
        scopes=tuple(claims.get("scopes", ())),
        issuer=str(claims.get("issuer", "")),
        is_admin=bool(claims.get("isAdmin", False)),
    )
    return WebSession(
        caller=caller,
        csrf_token=str(doc["csrfToken"]),
        expires_at=int(doc["expiresAt"]),
        access_token=tokens.get("accessToken"),
        document=doc,
    )


def session_store(documents: DocumentStore, settings: Settings) -> SessionStore:
    """The session store over the app's documents port."""
    return SessionStore(documents, settings)
