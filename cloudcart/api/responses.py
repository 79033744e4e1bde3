"""OpenAPI declarations of the problem documents every route may answer with.

Routers add the statuses they raise to their routes with `problem_responses(401, 404, ...)`;
the app declares 422 and 500 on every operation, so generated client SDKs (and schemathesis)
know the error shape.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloudcart.api.problems import PROBLEM_MEDIA_TYPE


class ValidationErrorItem(BaseModel):
    """One reason a request was rejected."""

    location: str = Field(description="Where the bad value is: `body.items.0.qty`, `query.limit`.")
    message: str = Field(description="What is wrong with it, in words.")
    type: str = Field(description="Machine-readable error type (`missing`, `int_parsing`, ...).")


class ProblemDocument(BaseModel):
    """An RFC 9457 problem details document (`application/problem+json`)."""

    # Problems may carry extension members (`errors`, `correlationId`, ...).
    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="URI identifying the problem type.")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(None, description="Explanation specific to this occurrence.")
    instance: str | None = Field(None, description="The request path this occurrence is about.")
    correlationId: str | None = Field(  # the wire name is camelCase
        None, description="Correlation id of the request; quote it when reporting a problem."
    )
    errors: list[ValidationErrorItem] | None = Field(
        None, description="Validation problems only: every reason the request was rejected."
    )


_PROBLEM_REF = "#/components/schemas/ProblemDocument"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A `responses=` mapping declaring a problem+json body for each status.

    The body is a reference rather than `model=`, because FastAPI would also declare the model
    under `application/json`; the app factory adds `ProblemDocument` to the components.
    """
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}},
        }
        for status in statuses
    }


def with_retry_after(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, Any]:
    """`responses` with a `Retry-After` header declared on its 429 and 503 answers."""
    header = {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    for code in (429, 503):
        if code in responses:
            responses[code] = {**responses[code], "headers": header}
    return responses


COMMON_PROBLEM_RESPONSES = problem_responses(422, 500)
"""Declared on every operation by the app: validation problems and unexpected errors."""
