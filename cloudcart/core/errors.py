"""Errors the ports raise, independent of the adapter behind them.

Business code catches these, never an SDK's exception types; the API layer turns the ones
that escape into problem documents.
"""

from __future__ import annotations

from typing import Any

from cloudcart.core.problems import CATALOGUE, problem_type_uri


class CloudcartError(Exception):
    """Base of every error Cloudcart raises on purpose."""


class DomainError(CloudcartError):
    """A request a business area refuses; it describes the problem document it becomes.

    The API answers every DomainError that escapes a route with one handler
    (`cloudcart.api.app`), so business areas raise these and never build problems
    themselves. Subclasses set `status`, `title` and `problem_type` (a slug expanded under
    the problem type base, e.g. `sku-taken`) as class attributes, or per instance when one
    class covers several answers, and `retry_after` when the caller should come back later.
    Override `problem_detail` when the message must not be the problem's detail (it may
    name internals) and `problem_extra` to add members to the document. A class that covers
    several types takes the slug and reads its status and title from the catalogue
    (`catalogued`), so each slug's answer is defined once. A subclass that names its
    `problem_type` and leaves out `status` or `title` gets the catalogue's.
    """

    status: int = 422
    title: str = "Unprocessable Content"
    problem_type: str = "about:blank"
    retry_after: int | None = None
    """Whole seconds to wait before trying again; when set, sent as `Retry-After`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entry = CATALOGUE.get(cls.__dict__.get("problem_type", ""))
        if entry is not None:
            if "status" not in cls.__dict__:
                cls.status = entry.status
            if "title" not in cls.__dict__:
                cls.title = entry.title

    def problem_headers(self) -> dict[str, str]:
        """Headers sent with the problem document (`Retry-After` when `retry_after` is set)."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def problem_detail(self) -> str | None:
        """The problem's `detail`: the exception's message unless a subclass says otherwise."""
        return str(self)

    def problem_extra(self) -> dict[str, Any]:
        """Members added to the problem document (none by default)."""
        return {}

    def catalogued(self, problem_type: str) -> None:
        """Take `status` and `title` from the catalogue entry of `problem_type`."""
        entry = CATALOGUE[problem_type]
        self.status, self.title = entry.status, entry.title

    def to_problem(self) -> dict[str, Any]:
        """The problem document without the request's members (`instance`, `correlationId`):
        for answers stored to be replayed as they were first sent."""
        doc: dict[str, Any] = {
            "type": self.problem_type
            if self.problem_type == "about:blank"
            else problem_type_uri(self.problem_type),
            "title": self.title,
            "status": self.status,
        }
        detail = self.problem_detail()
        if detail:
            doc["detail"] = detail
        doc.update(self.problem_extra())
        return doc


class DocumentError(CloudcartError):
    """A documents-port operation failed."""


class NotFound(DocumentError):
    """The document (or blob) does not exist."""


class Conflict(DocumentError):
    """A document with that id already exists in the partition."""


class PreconditionFailed(DocumentError):
    """An ETag (If-Match) or a patch condition did not hold; nothing was written."""


class BatchFailed(DocumentError):
    """A transactional batch was rolled back because one operation failed.

    `index` is the failing operation's position and `cause` the error it raised.
    """

    def __init__(self, index: int, cause: DocumentError) -> None:
        super().__init__(f"batch operation {index} failed: {cause!r}")
        self.index = index
        self.cause = cause


class Unavailable(CloudcartError):
    """A backing service could not be reached or kept throttling after retries."""


class Throttled(Unavailable):
    """A backing service kept throttling past the work's budget (`cloudcart.core.throttling`).

    `retry_after` is the wait in seconds the service last asked for; the API passes it on
    as `Retry-After`.
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BlobError(CloudcartError):
    """A blobs-port operation failed."""


class BlobNotFound(BlobError, NotFound):
    """The blob does not exist."""
