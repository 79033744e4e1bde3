"""Plumbing shared by the partner simulators: the loopback server, the SQLite state, the
idempotency records, the outbox of messages to send, outages and the API key check.

Each simulator is a FastAPI app served by its own uvicorn server in a daemon thread on
127.0.0.1, like the embedded identity provider's https listener. Everything a partner
must remember across a crash is committed to SQLite (WAL, synchronous=FULL) before the
HTTP answer leaves, so a simulator killed with SIGKILL and started again on the same
folder answers a repeated Idempotency-Key with the original result.

Inbound messages go through an outbox table: a row is written in the same transaction as
the state change that causes it, with the time it is due, and a dispatcher thread hands
due rows to `send` in order. A row is deleted only after `send` returned, so delivery is
at least once; the message id (the `eventId`) is fixed when the row is written, so
duplicate detection and the shop's consumers drop a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cloudcart.core.ports.messages import MessagePublisher, OutboundMessage

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PROBLEM_MEDIA_TYPE = "application/problem+json"
_STARTUP_TIMEOUT_SECONDS = 15.0
_SEND_RETRY_SECONDS = 1.0
_MAX_SEND_RETRY_SECONDS = 30.0
_IDLE_POLL_SECONDS = 1.0
_MAX_IDEMPOTENCY_KEY = 255

Sender = Callable[[str, dict[str, Any], str], None]
"""`send(queue, body, message_id)`: put one JSON message on a queue, as the partner would."""


def publisher_sender(publisher: MessagePublisher) -> Sender:
    """A `Sender` that publishes through Cloudcart's messages port, the way a partner's
    Service Bus client would: subject = the message `type`, message id = its `eventId`."""

    def send(queue: str, body: dict[str, Any], message_id: str) -> None:
        publisher.publish(
            queue,
            [
                OutboundMessage(
                    body=body,
                    message_id=message_id,
                    subject=body["type"],
                    content_type="application/json",
                )
            ],
        )

    return send


def iso_utc(timestamp: float) -> str:
    """A Unix time as ISO 8601 UTC with milliseconds and `Z`."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """A random id such as `evt-3f2a...` (valid in every message id field)."""
    return f"{prefix}-{secrets.token_hex(12)}"


def fingerprint(value: Any) -> str:
    """A digest of a JSON value that ignores key order and whitespace."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Problem(Exception):
    """An error answer: an RFC 9457 problem document with `status` and `detail`."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def problem_response(problem: Problem) -> JSONResponse:
    """The `application/problem+json` answer of a Problem."""
    return JSONResponse(
        {
            "type": "about:blank",
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
        },
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def required_key(value: str | None) -> str:
    """The Idempotency-Key header, or a 400 problem when it is missing or malformed."""
    if value is None or not value.strip():
        raise Problem(400, "Bad Request", "the Idempotency-Key header is required")
    if len(value) > _MAX_IDEMPOTENCY_KEY:
        raise Problem(400, "Bad Request", "the Idempotency-Key header is too long (max 255)")
    return value


def validation_detail(error: Exception) -> str:
    """One line naming each invalid field of a pydantic or FastAPI validation error."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class OutageBody(BaseModel):
    """`POST /sim/outage`: answer 503 to every /v1 route for `seconds` (0 ends it)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=86_400)


@dataclass(frozen=True)
class Stored:
    """An answer kept under an idempotency key."""

    status: int
    body: dict[str, Any]


_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    due_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due_at, seq);
"""


class PartnerSimulator:
    """Base of the simulators: state in `db_path`, the app served on 127.0.0.1:`port`
    (0 picks a free port), messages sent to `queue` through `send`, and `/v1` routes
    guarded by `api_key` (when set) and by simulated outages.

    Subclasses add their schema (`_schema`), their routes (`_add_routes`) and, when some
    outbox rows must wait, the kinds to hold back (`_held_kinds`). Use `start()` /
    `stop()` or a `with` block; an object serves once (restart with a new object on the
    same folder, and the same `port` if clients should not notice).
    """

    name = "partner"
    _schema = ""

    def __init__(
        self,
        db_path: Path,
        send: Sender,
        queue: str,
        *,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        self.db_path = Path(db_path)
        self.queue = queue
        self._send = send
        self._api_key = api_key or None
        self._requested_port = port
        self._lock = threading.RLock()
        self._outage_until = 0.0
        self._latency = 0.0
        self._send_retry_at = 0.0
        self._send_failures = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._sock: socket.socket | None = None
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the server's worker threads and the dispatcher, guarded
        # by _lock; transactions are explicit, hence isolation_level=None.
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.db_path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an accepted request must survive a power cut once its answer has left.
        self._db.execute("PRAGMA synchronous=FULL")
        with self._write() as db:
            for statement in (_BASE_SCHEMA + self._schema).split(";"):
                if statement.strip():
                    db.execute(statement)
        self.app = self._build_app()

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`; available once started."""
        if self._base_url is None:
            raise RuntimeError(f"the {self.name} simulator is not started")
        return self._base_url

    @property
    def port(self) -> int:
        """The port it listens on; available once started."""
        return int(self.base_url.rsplit(":", 1)[1])

    def start(self) -> Self:
        """Serve on 127.0.0.1 and start sending due messages; returns once the port
        accepts connections. Raises RuntimeError if it could not start (port taken, ...)."""
        import uvicorn

        if self._server is not None or self._db is None:
            raise RuntimeError(f"the {self.name} simulator was started already")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Lets a restarted simulator take the same port while old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, self._requested_port))
        except OSError as error:
            sock.close()
            raise RuntimeError(
                f"the {self.name} simulator could not listen on {HOST}:{self._requested_port}"
            ) from error
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            # No log_config: uvicorn would reconfigure the process's logging.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"{self.name}-sim", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"the {self.name} simulator could not start on {HOST}:{port}")
            time.sleep(0.01)
        self._server, self._server_thread, self._sock = server, thread, sock
        self._base_url = f"http://{HOST}:{port}"
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name=f"{self.name}-sim-outbox", daemon=True
        )
        self._dispatcher.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and sending, and close the database. Unsent messages stay in the
        outbox for the next simulator on the same folder."""
        if self._server is not None:
            self._server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(timeout)
        self._stopping.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- simulator controls ------------------------------------------------------------

    def outage(self, seconds: float) -> None:
        """Answer 503 with `Retry-After: 1` to every /v1 route for `seconds` (0 ends it)."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def latency(self, seconds: float) -> None:
        """Hold every /v1 answer for `seconds` after its effect is stored (0 ends it), as a
        slow partner would: a client that dies meanwhile never learns the outcome."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def pending_messages(self) -> list[dict[str, Any]]:
        """Messages not sent yet, in the order they will go (for diagnostics and tests)."""
        with self._write() as db:
            rows = db.execute("SELECT body FROM outbox ORDER BY due_at, seq").fetchall()
        return [json.loads(row["body"]) for row in rows]

    # --- plumbing for subclasses -------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise Problem(503, "Service Unavailable", f"the {self.name} simulator stopped")
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _idempotent(
        self,
        key: str,
        request_fingerprint: str,
        apply: Callable[[sqlite3.Connection], Stored],
        *,
        replay_status: Callable[[int], int] = lambda status: status,
    ) -> Stored:
        """Apply a keyed request once: the first call runs `apply` and stores its answer in
        the same transaction; a repeat answers the stored one (status via `replay_status`),
        and a repeat with another request is refused with 422. Problems raised by `apply`
        are not stored, so a corrected retry with the same key can still succeed."""
        with self._write() as db:
            row = db.execute(
                "SELECT fingerprint, status, body FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row["fingerprint"] != request_fingerprint:
                    raise Problem(
                        422,
                        "Unprocessable Content",
                        "this Idempotency-Key was used with a different request",
                    )
                return Stored(replay_status(row["status"]), json.loads(row["body"]))
            stored = apply(db)
            db.execute(
                "INSERT INTO idempotency (key, fingerprint, status, body, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, request_fingerprint, stored.status, json.dumps(stored.body), time.time()),
            )
            return stored

    def _enqueue(
        self,
        db: sqlite3.Connection,
        *,
        kind: str,
        subject_id: str,
        due_at: float,
        body: dict[str, Any],
    ) -> None:
        """Add a message to the outbox (inside the caller's transaction); `body` carries
        its `eventId`, which becomes the message id."""
        db.execute(
            "INSERT INTO outbox (event_id, kind, subject_id, due_at, body) VALUES (?, ?, ?, ?, ?)",
            (body["eventId"], kind, subject_id, due_at, json.dumps(body)),
        )

    def _nudge(self) -> None:
        """Wake the dispatcher: something may be due now."""
        self._wake.set()

    def _held_kinds(self) -> tuple[str, ...]:
        """Outbox kinds that must not be sent for now (none by default)."""
        return ()

    def _on_sent(self, db: sqlite3.Connection, kind: str, subject_id: str) -> None:
        """Record what a sent message says happened (inside the dispatcher's transaction)."""

    def _add_routes(self, app: FastAPI) -> None:
        """Add the simulator's routes."""

    # --- the dispatcher ----------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = self._dispatch_due()
            except Exception:
                logger.exception("%s simulator: the outbox dispatcher failed", self.name)
                delay = _SEND_RETRY_SECONDS
            self._wake.wait(max(0.0, min(delay, _IDLE_POLL_SECONDS)))
            self._wake.clear()

    def _dispatch_due(self) -> float:
        """Send every due message in order; the seconds until the next one is due."""
        while not self._stopping.is_set():
            now = time.time()
            if now < self._send_retry_at:
                return self._send_retry_at - now
            held = self._held_kinds()
            filter_sql = f"kind NOT IN ({','.join('?' * len(held))})" if held else "1 = 1"
            # The send happens inside the transaction: a cancellation cannot slip between a
            # `shipment.shipped` leaving and the request being marked shipped.
            with self._lock:
                if self._db is None:
                    return _IDLE_POLL_SECONDS
                with self._write() as db:
                    row = db.execute(
                        f"SELECT seq, kind, subject_id, due_at, body FROM outbox "  # noqa: S608
                        f"WHERE {filter_sql} ORDER BY due_at, seq LIMIT 1",
                        held,
                    ).fetchone()
                    if row is None:
                        return _IDLE_POLL_SECONDS
                    if row["due_at"] > now:
                        return float(row["due_at"]) - now
                    body = json.loads(row["body"])
                    try:
                        self._send(self.queue, body, body["eventId"])
                    except Exception:
                        # Later messages wait too: they must not overtake this one.
                        retry_in = min(
                            _MAX_SEND_RETRY_SECONDS,
                            _SEND_RETRY_SECONDS * (1 << min(self._send_failures, 5)),
                        )
                        self._send_failures += 1
                        logger.warning(
                            "%s simulator: sending %s failed; retrying in %.0fs",
                            self.name,
                            body.get("type"),
                            retry_in,
                            exc_info=True,
                        )
                        self._send_retry_at = time.time() + retry_in
                        return retry_in
                    self._send_failures = 0
                    db.execute("DELETE FROM outbox WHERE seq = ?", (row["seq"],))
                    self._on_sent(db, row["kind"], row["subject_id"])
        return 0.0

    # --- the app -----------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(
            title=f"Cloudcart {self.name} simulator",
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )

        @app.exception_handler(Problem)
        async def _problem(request: Request, error: Problem) -> Response:
            return problem_response(error)

        @app.exception_handler(RequestValidationError)
        async def _invalid(request: Request, error: RequestValidationError) -> Response:
            return problem_response(Problem(422, "Unprocessable Content", validation_detail(error)))

        @app.middleware("http")
        async def _guard(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            if request.url.path.startswith("/v1/"):
                if time.monotonic() < self._outage_until:
                    return problem_response(
                        Problem(
                            503,
                            "Service Unavailable",
                            f"the {self.name} simulator is in a simulated outage",
                            {"Retry-After": "1"},
                        )
                    )
                if self._api_key is not None and not secrets.compare_digest(
                    request.headers.get("X-Api-Key", "").encode(), self._api_key.encode()
                ):
                    return problem_response(
                        Problem(
                            401,
                            "Unauthorized",
                            "a valid X-Api-Key header is required",
                            {"WWW-Authenticate": 'ApiKey header="X-Api-Key"'},
                        )
                    )
            response = await call_next(request)
            if self._latency and request.url.path.startswith("/v1/"):
                await asyncio.sleep(self._latency)
            return response

        @app.post("/sim/outage")
        def _outage(body: OutageBody) -> dict[str, Any]:
            self.outage(body.seconds)
            return {"seconds": body.seconds}

        @app.post("/sim/latency")
        def _latency(body: OutageBody) -> dict[str, Any]:
            self.latency(body.seconds)
            return {"seconds": body.seconds}

        self._add_routes(app)
        return app
