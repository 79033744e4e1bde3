"""RFC 9457 problem details: the one error shape every route answers with."""

from __future__ import annotations

from typing import Any

from cloudcart.core.problems import PROBLEM_TYPE_BASE

__all__ = ["PROBLEM_MEDIA_TYPE", "PROBLEM_TYPE_BASE", "Problem"]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in request handling to answer with a problem document.

    `type_` is a short slug (`invalid-token`) expanded under PROBLEM_TYPE_BASE; `extra` adds
    members to the document (for example `errors` for validation problems).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ if type_ == "about:blank" else PROBLEM_TYPE_BASE + type_
        self.headers = headers or {}
        self.extra = extra or {}

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc
