"""OpenAPI declarations of the problem documents every route may answer with.

Routers add the statuses they raise to their routes with `problem_responses(401, 404, ...)`;
the app declares 422 and 500 on every operation, so generated client SDKs (and schemathesis)
know the error shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Query
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


def optional_auth() -> dict[str, Any]:
    """`openapi_extra=` of an operation that anonymous callers may use too (the cart named by
    `X-Cart-Id`, storefront events of an `X-Visitor-Id`).

    FastAPI declares the bearer requirement of the route's credentials dependency; the empty
    requirement this adds beside it (FastAPI appends to the list) says the token is optional.
    """
    return {"security": [{}]}


# Parameters the document constrains but the route checks itself, so a bad value keeps the
# route's own problem type (FastAPI would answer its generic 422 for a declared constraint).

BASE64URL_CURSOR: dict[str, Any] = {"pattern": r"^[A-Za-z0-9_-]+={0,2}$"}
"""`json_schema_extra=` of an opaque `cursor` query parameter: the cursors the API returns
are base64url (padded); a malformed or forged one stays the route's own 400."""

PageCursor = Annotated[
    str | None,
    Query(
        max_length=4000,
        description="`cursor` of the previous page.",
        json_schema_extra=BASE64URL_CURSOR,
    ),
]
"""The `cursor` query parameter of a paged list whose route decodes it itself."""

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def is_base64url(value: str) -> bool:
    """Whether `value` has the shape `BASE64URL_CURSOR` declares (decoders check it first:
    the base64 module skips characters outside the alphabet)."""
    return _BASE64URL.fullmatch(value) is not None


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def rfc3339_only(value: object) -> object:
    """`BeforeValidator` of a `format: date-time` parameter: refuses (422 validation-error)
    the other forms pydantic reads as a datetime (unix seconds, a bare date, no offset)."""
    if isinstance(value, str) and _RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2030-01-31T00:00:00Z")
    return value


def documented_string(**constraints: Any) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra=` of an optional header or query parameter that the route checks
    itself (answering its own problem type, where FastAPI would answer 422).

    The parameter's schema becomes a plain string (a header or query value is never null),
    keeping the constraints FastAPI enforces and adding these, which only the document states.
    """

    def update(schema: dict[str, Any]) -> None:
        for branch in schema.pop("anyOf", []):
            if branch.get("type") == "string":
                schema.update(branch)
        schema["type"] = "string"
        schema.update(constraints)

    return update
