"""Liveness and readiness probes.

`/api/health` says the process answers and touches nothing else, so a slow database never
gets a healthy instance restarted. `/api/ready` checks every configured adapter, so a load
balancer or `azd` deployment waits until the app can really serve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cloudcart.api.deps import ServicesDep
from cloudcart.composition import Services

router = APIRouter(prefix="/api", tags=["health"])
logger = logging.getLogger(__name__)

READY_CHECK_TIMEOUT_SECONDS = 5.0
"""How long /api/ready waits for all checks together before calling the slow ones failed."""


class HealthResponse(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    """The outcome of one readiness check."""

    status: Literal["ok", "failed"]
    adapter: str = Field(description="Which adapter backs the port: `embedded` or `azure`.")
    error: str | None = Field(
        None, description="Failed checks only: the kind of error (details are in the logs)."
    )


class ReadyResponse(BaseModel):
    """Readiness of every configured adapter."""

    status: Literal["ready", "unready"]
    environment: str
    checks: dict[str, CheckResult]


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Liveness probe",
    operation_id="health",
)
async def health() -> HealthResponse:
    """Answers 200 while the process can serve requests; touches no adapter."""
    return HealthResponse()


def _checks(services: Services) -> dict[str, tuple[str, Callable[[], object]]]:
    settings = services.settings
    return {
        "documents": (settings.documents_adapter.value, lambda: services.documents.check()),
        "blobs": (settings.blobs_adapter.value, lambda: services.blobs.check()),
        # Building the validator loads the issuers' configuration (or the dev keys).
        "identity": (settings.identity_adapter.value, lambda: services.token_validator),
    }


@router.get(
    "/ready",
    response_model=ReadyResponse,
    summary="Readiness probe",
    operation_id="ready",
    responses={503: {"model": ReadyResponse, "description": "A check failed"}},
)
def ready(services: ServicesDep) -> JSONResponse:
    """Runs each adapter's check; 200 when all pass, 503 naming the failing ones."""
    checks = _checks(services)
    # In parallel with one overall deadline: a hung backend must not hang the probe.
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="ready-check")
    try:
        futures = {name: pool.submit(run) for name, (_, run) in checks.items()}
        wait(futures.values(), timeout=READY_CHECK_TIMEOUT_SECONDS)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    results: dict[str, CheckResult] = {}
    for name, future in futures.items():
        adapter = checks[name][0]
        if not future.done():
            logger.error("readiness check %s timed out", name)
            results[name] = CheckResult(status="failed", adapter=adapter, error="Timeout")
            continue
        exc = future.exception()
        if exc is None:
            results[name] = CheckResult(status="ok", adapter=adapter)
        else:
            logger.error("readiness check %s failed", name, exc_info=exc)
            # Only the error's type: messages can hold endpoints or account names.
            results[name] = CheckResult(status="failed", adapter=adapter, error=type(exc).__name__)

    ok = all(r.status == "ok" for r in results.values())
    body = ReadyResponse(
        status="ready" if ok else "unready",
        environment=services.settings.environment,
        checks=results,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)
