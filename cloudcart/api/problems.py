"""RFC 9457 problem details: the one error shape every route answers with."""

from __future__ import annotations

from typing import Any

from cloudcart.core.problems import CATALOGUE, PROBLEM_TYPE_BASE

__all__ = ["PROBLEM_MEDIA_TYPE", "PROBLEM_TYPE_BASE", "Problem"]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in request handling to answer with a problem document.

    `type_` is a short slug (`invalid-token`) expanded under PROBLEM_TYPE_BASE; `extra` adds
    members to the document (for example `errors` for validation problems). A problem of a
    catalogued type is made with `Problem.of(slug, detail)`; the constructor is for the
    generic `about:blank` ones (a status and its reason phrase).
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

    @classmethod
    def of(
        cls,
        slug: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Problem:
        """The problem of a catalogued type (`cloudcart.core.problems.CATALOGUE`), with its
        status and title from the catalogue; `status` picks another of its catalogued
        statuses."""
        entry = CATALOGUE[slug]
        if status is not None and status not in entry.statuses:
            raise ValueError(f"{slug} is not answered with {status} ({entry.statuses})")
        return cls(
            entry.status if status is None else status,
            entry.title,
            detail,
            type_=slug,
            headers=headers,
            extra=extra,
        )

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc
