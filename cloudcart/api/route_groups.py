"""Routers mounted on the first request that needs them.

Building a FastAPI route costs (its dependencies and models are analysed when it is added),
and the app has over a hundred. A Functions instance that starts cold to answer one request
should not pay for all of them first, so `create_app(lazy_routes=True)` (what the Functions
host and `cloudcart serve` run) declares its routers as `RouteGroup`s and adds a group to
the app only when a request's path starts with one of the group's prefixes.

The app then behaves exactly as if every group had been added at start:

- every route of a group starts with one of its declared prefixes (a test checks it), so
  every route that could match a request is mounted before the request is routed;
- the mounted routes are kept in declaration order, so when two routes could match, the
  same one wins as with everything mounted;
- a path that no prefix covers (a 404 or a 405), the OpenAPI document and the docs page
  mount every group first.

Not an off-the-shelf feature: FastAPI and Starlette build routes eagerly, and mounting
sub-applications instead would split the OpenAPI document and the error handling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True)
class RouteGroup:
    """Routers that are mounted together: `load` imports them (and does whatever their area
    needs first) and returns them; `prefixes` are the paths their routes start with, and
    `paths` exact paths of theirs that no prefix covers (`/`, which every path starts with)."""

    name: str
    prefixes: tuple[str, ...]
    load: Callable[[], Sequence[APIRouter]]
    paths: tuple[str, ...] = ()

    def covers(self, path: str) -> bool:
        """Whether a request for `path` may be one of this group's routes."""
        return path in self.paths or any(path.startswith(prefix) for prefix in self.prefixes)


class RouteGroups:
    """The groups of one app and which of them are mounted (thread-safe)."""

    def __init__(self, app: FastAPI, groups: Iterable[RouteGroup]) -> None:
        self.app = app
        self.groups = tuple(groups)
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"route group names must be unique: {names}")
        self._base: list[BaseRoute] = list(app.router.routes)
        self._routes: dict[str, list[BaseRoute]] = {}
        self._lock = threading.Lock()

    @property
    def mounted(self) -> set[str]:
        """The names of the groups mounted so far."""
        return set(self._routes)

    def mount_for(self, path: str) -> None:
        """Mount every group that may route `path` (all of them when none covers it)."""
        wanted = [group for group in self.groups if group.covers(path)]
        self._mount(wanted or self.groups)

    def mount_all(self) -> None:
        """Mount every group."""
        self._mount(self.groups)

    def _mount(self, groups: Sequence[RouteGroup]) -> None:
        if all(group.name in self._routes for group in groups):
            return
        with self._lock:
            for group in groups:
                if group.name not in self._routes:
                    self._routes[group.name] = self._build(group)
            ordered = list(self._base)
            for group in self.groups:
                ordered.extend(self._routes.get(group.name, ()))
            # A new list, not an edit of the old one: a request being routed meanwhile
            # keeps iterating the list it started with.
            self.app.router.routes = ordered
            self.app.openapi_schema = None

    def _build(self, group: RouteGroup) -> list[BaseRoute]:
        before = len(self.app.router.routes)
        for router in group.load():
            self.app.include_router(router)
        return list(self.app.router.routes[before:])


class MountRoutesMiddleware:
    """Pure ASGI middleware that mounts the groups a request needs before it is routed."""

    def __init__(self, app: ASGIApp, groups: RouteGroups, everything: Sequence[str]) -> None:
        self.app = app
        self.groups = groups
        self.everything = tuple(everything)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Mount what the request needs, then pass it on."""
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if path in self.everything:
                self.groups.mount_all()
            else:
                self.groups.mount_for(path)
        await self.app(scope, receive, send)


def route_paths(routes: Iterable[Any], prefix: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """(path, sorted methods) of every route, looking inside included routers (FastAPI adds
    an included router as one route that holds the original router and its prefix)."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            found.extend(route_paths(included.routes, prefix + getattr(context, "prefix", "")))
            continue
        path = getattr(route, "path", None)
        if isinstance(path, str):
            found.append((prefix + path, tuple(sorted(getattr(route, "methods", None) or ()))))
    return found


def routes_outside_prefixes(groups: RouteGroups) -> list[tuple[str, str]]:
    """(group, path) of every route that does not start with one of its group's prefixes
    (mounts every group); empty when the declarations are right."""
    groups.mount_all()
    return [
        (group.name, path)
        for group in groups.groups
        for path, _ in route_paths(groups._routes[group.name])
        if not group.covers(path)
    ]
