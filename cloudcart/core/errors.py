"""Errors the ports raise, independent of the adapter behind them.

Business code catches these, never an SDK's exception types; the API layer turns the ones
that escape into problem documents.
"""

from __future__ import annotations


class CloudcartError(Exception):
    """Base of every error Cloudcart raises on purpose."""


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


class BlobError(CloudcartError):
    """A blobs-port operation failed."""


class BlobNotFound(BlobError, NotFound):
    """The blob does not exist."""
