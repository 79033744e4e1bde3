"""Cosmos DB change-feed triggers on the documents port."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import azure.functions as func

from cloudcart.core.clock import utcnow
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.errors import NotFound
from cloudcart.local.triggers import logger
from cloudcart.local.triggers.bindings import FunctionPlan, TriggerBinding
from cloudcart.local.triggers.config import TriggerHostError
from cloudcart.local.triggers.runtime import Invoker, Runner

if TYPE_CHECKING:
    from cloudcart.composition import Services
    from cloudcart.core.ports.documents import Container

DEFAULT_LEASE_CONTAINER = "leases"
DEFAULT_MAX_ITEMS_PER_INVOCATION = 100
MAX_RETRY_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class ChangeFeedPlan:
    """A change-feed trigger: the container it follows and where its lease is kept."""

    function: FunctionPlan
    container: str
    lease_container: str = DEFAULT_LEASE_CONTAINER
    lease_id: str = ""
    max_items: int = DEFAULT_MAX_ITEMS_PER_INVOCATION
    start_from_beginning: bool = False
    poll_seconds: float | None = None

    @classmethod
    def from_binding(cls, binding: TriggerBinding) -> ChangeFeedPlan:
        """Read a `cosmosDBTrigger`. Raises TriggerHostError for a missing setting."""
        container = binding.text("containerName", "collectionName") or ""
        binding.text("databaseName", required=False)  # resolved only to report a missing setting
        lease_container = (
            binding.text("leaseContainerName", "leaseCollectionName", required=False)
            or DEFAULT_LEASE_CONTAINER
        )
        prefix = binding.text("leaseContainerPrefix", "leaseCollectionPrefix", required=False) or ""
        max_items = binding.values.get("maxItemsPerInvocation") or DEFAULT_MAX_ITEMS_PER_INVOCATION
        delay = binding.values.get("feedPollDelay")
        return cls(
            binding.function,
            container=container,
            lease_container=lease_container,
            lease_id=f"{prefix}{container}",
            max_items=int(max_items),
            start_from_beginning=bool(binding.values.get("startFromBeginning", False)),
            poll_seconds=None if delay is None else int(delay) / 1000,
        )


class ChangeFeedRunner(Runner[ChangeFeedPlan]):
    """Runs change-feed trigger functions by polling each container's change feed.

    - Checkpointing: each function keeps its change-feed checkpoint in its lease document
      (`<leaseContainerPrefix><container>` in the lease container), stored after each
      batch its function handled, so a restart continues where the last run stopped.
    - At least once: a failing function keeps its checkpoint and gets the same documents
      again after a backoff (the poll interval doubled per failure in a row, at most
      `MAX_RETRY_BACKOFF_SECONDS`); a restart before a checkpoint is stored replays the
      batch.
    - Starting point, as on Azure: with no lease yet, `startFromBeginning` delivers the
      whole feed; otherwise only changes made from now on, and that point is stored at once.
    - An idle feed is polled again after the trigger's `feedPollDelay`, else the host's
      poll interval.

    Raises TriggerHostError when two functions would share one lease.
    """

    def __init__(
        self,
        plans: Sequence[ChangeFeedPlan],
        services: Services,
        invoker: Invoker,
        stopping: threading.Event,
        poll_interval: float,
        max_idle: float,
    ) -> None:
        super().__init__(plans, invoker, stopping)
        self.services = services
        self.poll_interval = poll_interval
        self.max_idle = max_idle
        leases: dict[tuple[str, str], str] = {}
        for plan in self.plans:
            key = (plan.lease_container, plan.lease_id)
            if key in leases:
                raise TriggerHostError(
                    f"functions {leases[key]!r} and {plan.function.name!r} share the lease "
                    f"{plan.lease_id!r} in {plan.lease_container!r}; give one of them a "
                    "lease_container_prefix"
                )
            leases[key] = plan.function.name

    def start(self) -> None:
        """Start one poller per function."""
        for plan in self.plans:
            self._spawn(partial(self._poll, plan), plan.function.name)

    def _commits(self) -> int:
        store = self.services.documents
        return store.commits if isinstance(store, SqliteDocumentStore) else 0

    def wake(self) -> None:
        """Let pollers waiting for a write return; called once `stopping` is set."""
        store = self.services.documents
        if isinstance(store, SqliteDocumentStore):
            store.wake()

    def _wait_idle(self, plan: ChangeFeedPlan, seen: int, idle: float) -> float:
        """Wait before polling an empty feed again; returns the next wait.

        A trigger's own `feedPollDelay` is kept as it is. Otherwise a write committed in
        this process ends the wait at once, and the wait doubles up to `max_idle` while the
        feed stays empty, which only bounds how late another process's write is seen.
        """
        store = self.services.documents
        if plan.poll_seconds is not None or not isinstance(store, SqliteDocumentStore):
            self.stopping.wait(idle)
            return idle
        store.wait_for_commit(seen, idle)
        return min(max(self.poll_interval, self.max_idle), idle * 2)

    def _backoff(self, failures: int) -> float:
        return float(min(MAX_RETRY_BACKOFF_SECONDS, self.poll_interval * 2**failures))

    def _load_checkpoint(self, plan: ChangeFeedPlan, container: Container) -> str | None:
        leases = self.services.documents.container(plan.lease_container)
        try:
            lease = leases.read(plan.lease_id, plan.lease_id)
        except NotFound:
            pass
        else:
            checkpoint = lease.get("checkpoint")
            return None if checkpoint is None else str(checkpoint)
        if plan.start_from_beginning:
            return None
        # As in Azure: with no lease and no startFromBeginning, only changes made from now
        # on are delivered; the lease is stored at once so a restart keeps that point.
        latest: str | None = None
        while True:
            page = container.change_feed(latest, max_items=1000)
            latest = page.checkpoint
            if not page.items:
                break
        self._store_checkpoint(plan, latest)
        return latest

    def _store_checkpoint(self, plan: ChangeFeedPlan, checkpoint: str | None) -> None:
        self.services.documents.container(plan.lease_container).upsert(
            {
                "id": plan.lease_id,
                "checkpoint": checkpoint,
                "function": plan.function.name,
                "container": plan.container,
                "updatedAt": utcnow().isoformat(),
            }
        )

    def _poll(self, plan: ChangeFeedPlan) -> None:
        name = plan.function.name
        first_idle = plan.poll_seconds if plan.poll_seconds is not None else self.poll_interval
        idle = first_idle
        failures = 0
        checkpoint: str | None = None
        loaded = False
        while not self.stopping.is_set():
            seen = self._commits()
            try:
                container = self.services.documents.container(plan.container)
                if not loaded:
                    checkpoint = self._load_checkpoint(plan, container)
                    loaded = True
                page = container.change_feed(checkpoint, max_items=plan.max_items)
            except Exception:
                failures += 1
                logger.exception("change feed read failed", extra={"function": name})
                self.stopping.wait(self._backoff(failures))
                continue
            if not page.items:
                idle = self._wait_idle(plan, seen, idle)
                continue
            idle = first_idle
            documents = func.DocumentList([func.Document.from_dict(d) for d in page.items])
            fields = {"container": plan.container, "documentCount": len(page.items)}
            try:
                self.invoker.invoke(plan.function, documents, None, fields)
            except Exception:
                failures += 1
                # The checkpoint stays: the same documents come again after the backoff.
                logger.error(
                    "function failed; change-feed batch will be retried",
                    exc_info=True,
                    extra={"function": name, "attempt": failures, **fields},
                )
                self.stopping.wait(self._backoff(failures))
                continue
            failures = 0
            checkpoint = page.checkpoint
            try:
                self._store_checkpoint(plan, checkpoint)
            except Exception:
                # Delivery is at least once: a restart before the next store replays this.
                logger.exception("storing the change-feed lease failed", extra=fields)
