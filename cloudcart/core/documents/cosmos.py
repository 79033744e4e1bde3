"""The Azure documents adapter: Cosmos DB for NoSQL through `azure-cosmos`.

The SDK (and `azure-identity`) are imported inside constructors so that importing this
module, or running the embedded adapter, never pays their import time on a cold start.

Throttling: the adapter retries 429s itself, not the SDK (whose throttle retries are
turned off), waiting what the service asks for in `x-ms-retry-after-ms`, within the budget
of the work in hand (`cloudcart.core.throttling`): a couple of retries within a second
for an HTTP request, then `Throttled` (a 503 with Retry-After); up to 9 retries within
30 s for background work. One client serves both, since the SDK reads its retry options
from the client and would need a client per budget. A 429 means the service did not do
the work, so the retried write happens exactly once. Writes are *not* retried after
timeouts or dropped connections (the SDK's default `retry_write` off), because then the
first attempt may have succeeded; those surface as `Unavailable` and callers rely on
ETags / conditional creates to retry safely.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.documents.rules import (
    SYSTEM_PROPERTIES,
    check_batch_size,
    check_document_size,
    check_patch_size,
    clean_document,
    container_spec_in,
    effective_ttl,
    field_path,
    partition_key_of,
    read_many_keys,
)
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DocumentError,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)
from cloudcart.core.ports.documents import (
    BatchOp,
    ChangeFeedPage,
    Container,
    ContainerSpec,
    Document,
    DocumentStore,
    Filter,
    Page,
    PatchOp,
    Query,
)
from cloudcart.core.throttling import BACKGROUND, current

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

T = TypeVar("T")

THROTTLE_RETRIES = BACKGROUND.retries
"""How many times background work retries a throttled (429) request before `Throttled`."""

THROTTLE_MAX_WAIT_SECONDS = BACKGROUND.max_wait_seconds
"""Upper bound of the time background work spends waiting on 429s for one request."""

_DEFAULT_RETRY_AFTER_SECONDS = 0.1
"""The wait when a 429 does not say (the service always does)."""

_COMPARISONS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def from_settings(settings: Settings) -> DocumentStore:
    """The Cosmos store of `settings`: the emulator key if set, else the app's identity."""
    if not settings.cosmos_endpoint:
        raise ValueError("CosmosDB__accountEndpoint must be set for the azure documents adapter")
    credential: Any
    if settings.cosmos_key is not None:
        credential = settings.cosmos_key.get_secret_value()
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return CosmosDocumentStore(settings.cosmos_endpoint, settings.cosmos_database, credential)


# --- Cosmos SQL generation ------------------------------------------------------------------


def _ref(field: str) -> str:
    # `field_path` allows identifiers only, so `c.a.b` needs no quoting.
    return "c." + ".".join(field_path(field))


class _SqlBuilder:
    """Renders filters as Cosmos SQL, with `@p<n>` parameters or inline JSON literals.

    Patch filter predicates take no parameters, so there values are written as JSON
    literals (`json.dumps`, which escapes quotes and control characters and is valid Cosmos
    SQL literal syntax); queries always use parameters.
    """

    def __init__(self, *, parameterised: bool) -> None:
        self.parameterised = parameterised
        self.parameters: list[dict[str, Any]] = []

    def value(self, value: Any) -> str:
        if not self.parameterised:
            return json.dumps(value, ensure_ascii=True, allow_nan=False)
        name = f"@p{len(self.parameters)}"
        self.parameters.append({"name": name, "value": value})
        return name

    def condition(self, flt: Filter) -> str:
        ref = _ref(flt.field)
        if flt.op == "exists":
            return f"IS_DEFINED({ref})" if flt.value else f"NOT IS_DEFINED({ref})"
        if flt.op == "contains":
            return f"ARRAY_CONTAINS({ref}, {self.value(flt.value)})"
        if flt.op == "in":
            if not isinstance(flt.value, list | tuple):
                raise ValueError("'in' needs a list value")
            return f"ARRAY_CONTAINS({self.value(list(flt.value))}, {ref})"
        if flt.op == "startswith":
            if not isinstance(flt.value, str):
                raise ValueError("startswith needs a string value")
            return f"STARTSWITH({ref}, {self.value(flt.value)})"
        if flt.op not in _COMPARISONS:
            raise ValueError(f"unknown filter op {flt.op!r}")
        if isinstance(flt.value, dict | list):
            raise ValueError("filters compare scalar values only")
        if flt.value is None and flt.op not in ("eq", "ne"):
            raise ValueError(f"{flt.op!r} cannot compare with null")
        return f"{ref} {_COMPARISONS[flt.op]} {self.value(flt.value)}"

    def where(self, filters: Sequence[Filter]) -> str:
        return " AND ".join(self.condition(f) for f in filters)


def query_sql(query: Query) -> tuple[str, list[dict[str, Any]]]:
    """The parameterised Cosmos SQL text and parameters of a port `Query`."""
    builder = _SqlBuilder(parameterised=True)
    sql = "SELECT * FROM c"
    if query.filters:
        sql += " WHERE " + builder.where(query.filters)
    if query.order_by:
        sql += " ORDER BY " + ", ".join(
            f"{_ref(o.field)} {'DESC' if o.descending else 'ASC'}" for o in query.order_by
        )
    return sql, builder.parameters


def indexing_policy(spec: ContainerSpec) -> dict[str, Any]:
    """The container's Cosmos indexing policy: every path, plus its composite indexes.

    The same policy as infra/bicep/modules/cosmos.bicep, so a container the app creates
    (emulator, first run) answers multi-field ORDER BY queries like a deployed one.
    """
    return {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": '/"_etag"/?'}],
        "compositeIndexes": [
            [{"path": path, "order": order} for path, order in index]
            for index in spec.composite_indexes
        ],
    }


def filter_predicate(condition: Sequence[Filter]) -> str | None:
    """A patch `filter_predicate` (`FROM c WHERE ...`) for the conditions, if any."""
    if not condition:
        return None
    return "FROM c WHERE " + _SqlBuilder(parameterised=False).where(condition)


def patch_operations(operations: Sequence[PatchOp], spec: ContainerSpec) -> list[dict[str, Any]]:
    """Port patch operations as Cosmos JSON patch operations (`a.b` -> `/a/b`)."""
    check_patch_size(operations)
    out = []
    for op in operations:
        if op.path in ("id", spec.partition_key_field) or op.path.split(".")[0] in (
            SYSTEM_PROPERTIES
        ):
            raise ValueError(f"patch cannot change {op.path!r}")
        entry: dict[str, Any] = {"op": op.op, "path": "/" + op.path.replace(".", "/")}
        if op.op != "remove":
            entry["value"] = op.value
        out.append(entry)
    return out


def _strip(doc: Any) -> Document:
    """A returned document without the Cosmos-internal properties the port does not define."""
    return {
        k: v for k, v in dict(doc).items() if k not in ("_rid", "_self", "_attachments", "_lsn")
    }


# --- errors --------------------------------------------------------------------------------


def _status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _translate(exc: Exception, what: str) -> Exception:
    """The port error for an SDK/transport exception (or the exception itself)."""
    status = _status_of(exc)
    if status == 404:
        return NotFound(f"{what}: not found")
    if status == 409:
        return Conflict(f"{what}: already exists")
    if status == 412:
        return PreconditionFailed(f"{what}: precondition failed")
    if status == 400:
        return ValueError(f"{what}: bad request: {getattr(exc, 'message', exc)}")
    if status == 413:
        # A write the client-side checks let through, e.g. a patch that grows a document
        # past 2 MB: the same refusal as theirs.
        return ValueError(f"{what}: too large: {getattr(exc, 'message', exc)}")
    if status is None or status in (408, 429, 449, 500, 502, 503, 504):
        return Unavailable(f"{what}: Cosmos DB unavailable: {exc}")
    return DocumentError(f"{what}: Cosmos DB error {status}: {exc}")


def _retry_after(exc: Exception) -> float:
    """The seconds a 429 asks to wait (`x-ms-retry-after-ms`)."""
    headers = getattr(exc, "headers", None) or {}
    try:
        return float(headers["x-ms-retry-after-ms"]) / 1000
    except (KeyError, TypeError, ValueError):
        return _DEFAULT_RETRY_AFTER_SECONDS


def with_throttle_retries(
    fn: Callable[[], T],
    errors: tuple[type[Exception], ...],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`fn()`, retried on 429 as the current budget allows; `Throttled` past it.

    A retry is made only if its wait still fits in the budget: an HTTP request the service
    asks to come back in 5 s fails at once rather than holding its caller for 5 s.
    """
    budget = current()
    waited = 0.0
    retries = 0
    while True:
        try:
            return fn()
        except errors as exc:
            if _status_of(exc) != 429:
                raise
            delay = _retry_after(exc)
            if retries >= budget.retries or waited + delay > budget.max_wait_seconds:
                raise Throttled(
                    f"{what}: Cosmos DB is throttling (retried {retries} times, "
                    f"{waited:.1f} s); it asks to retry after {delay:.3f} s",
                    retry_after=delay,
                ) from exc
            sleep(delay)
            waited += delay
            retries += 1


class CosmosContainer:
    """One Cosmos container; see `cloudcart.core.ports.documents.Container`."""

    def __init__(
        self, client: Any, spec: ContainerSpec, errors: tuple[type[Exception], ...]
    ) -> None:
        self.spec = spec
        self._client = client
        self._errors = errors

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise _translate(exc, f"{self.spec.name}: {what}") from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._calling(what):
            return with_throttle_retries(fn, self._errors, f"{self.spec.name}: {what}")

    def _prepare(self, document: Document) -> tuple[Document, str]:
        doc = clean_document(document)
        effective_ttl(self.spec, doc)  # validates `ttl` the same way the embedded store does
        check_document_size(doc)
        return doc, partition_key_of(self.spec, doc)

    def read(self, id: str, partition_key: str) -> Document:
        """Point read. Raises NotFound."""
        return _strip(self._call(f"read {id}", lambda: self._client.read_item(id, partition_key)))

    def read_many(self, keys: Sequence[tuple[str, str]]) -> list[Document]:
        """The SDK's read many (a query per physical partition, in parallel; one key alone
        is a point read); missing and expired documents are left out."""
        wanted = read_many_keys(keys)
        if not wanted:
            return []

        def read() -> dict[tuple[str, str], Document]:
            items = self._client.read_items(items=wanted)
            # The SDK matches results to keys by id alone and gives no order, so key them
            # by id and partition key here: one id may live in several partitions.
            return {(d["id"], partition_key_of(self.spec, d)): _strip(d) for d in items}

        found = self._call(f"read {len(wanted)} documents", read)
        return [found[key] for key in wanted if key in found]

    def create(self, document: Document) -> Document:
        """Insert; raises Conflict when the id exists in that partition."""
        doc, _ = self._prepare(document)
        return _strip(self._call(f"create {doc['id']}", lambda: self._client.create_item(doc)))

    def replace(self, document: Document, *, if_match: str | None = None) -> Document:
        """Replace an existing document, optionally only if its `_etag` matches."""
        doc, _ = self._prepare(document)
        kwargs = _if_match(if_match)
        return _strip(
            self._call(
                f"replace {doc['id']}", lambda: self._client.replace_item(doc["id"], doc, **kwargs)
            )
        )

    def upsert(self, document: Document) -> Document:
        """Create or replace."""
        doc, _ = self._prepare(document)
        return _strip(self._call(f"upsert {doc['id']}", lambda: self._client.upsert_item(doc)))

    def delete(self, id: str, partition_key: str, *, if_match: str | None = None) -> None:
        """Delete. Raises NotFound, or PreconditionFailed on an ETag mismatch."""
        kwargs = _if_match(if_match)
        self._call(f"delete {id}", lambda: self._client.delete_item(id, partition_key, **kwargs))

    def patch(
        self,
        id: str,
        partition_key: str,
        operations: Sequence[PatchOp],
        *,
        condition: Sequence[Filter] = (),
        if_match: str | None = None,
    ) -> Document:
        """Patch atomically, server-side, if the filter predicate holds (else 412)."""
        ops = patch_operations(operations, self.spec)
        kwargs = _if_match(if_match)
        predicate = filter_predicate(condition)
        if predicate is not None:
            kwargs["filter_predicate"] = predicate
        return _strip(
            self._call(
                f"patch {id}", lambda: self._client.patch_item(id, partition_key, ops, **kwargs)
            )
        )

    def query(
        self,
        query: Query,
        *,
        partition_key: str | None = None,
        continuation: str | None = None,
    ) -> Page:
        """One page of the query; the continuation is the service's own token."""
        if query.limit < 1:
            raise ValueError("query limit must be at least 1")
        sql, parameters = query_sql(query)
        scope: dict[str, Any] = (
            {"partition_key": partition_key}
            if partition_key is not None
            else {"enable_cross_partition_query": True}
        )

        def one_page() -> Page:
            pages = self._client.query_items(
                sql, parameters=parameters, max_item_count=query.limit, **scope
            ).by_page(continuation)
            items = [_strip(d) for d in next(pages, [])]
            return Page(items=items, continuation=pages.continuation_token or None)

        return self._call("query", one_page)

    def batch(self, partition_key: str, operations: Sequence[BatchOp]) -> list[Document]:
        """Run the operations as one transactional batch (all or nothing)."""
        check_batch_size(operations)
        sdk_ops = [self._batch_op(partition_key, op) for op in operations]
        from azure.cosmos.exceptions import CosmosBatchOperationError

        try:
            results = with_throttle_retries(
                lambda: self._client.execute_item_batch(sdk_ops, partition_key),
                self._errors,
                f"{self.spec.name}: batch",
            )
        except CosmosBatchOperationError as exc:
            index = int(exc.error_index or 0)
            cause = _translate(exc, f"{self.spec.name}: batch operation {index}")
            if isinstance(cause, ValueError):
                # Refused input, as the embedded store refuses it: not a failed transaction.
                raise cause from exc
            if not isinstance(cause, DocumentError):
                cause = DocumentError(str(cause))
            raise BatchFailed(index, cause) from exc
        except self._errors as exc:
            raise _translate(exc, f"{self.spec.name}: batch") from exc
        return [_strip(r.get("resourceBody") or {}) for r in results]

    def _batch_op(self, partition_key: str, op: BatchOp) -> tuple[Any, ...]:
        options: dict[str, Any] = {}
        if op.if_match is not None:
            options["if_match_etag"] = op.if_match
        if op.kind in ("create", "upsert", "replace"):
            if op.document is None:
                raise ValueError(f"batch {op.kind} needs a document")
            doc, pk = self._prepare(op.document)
            if pk != partition_key:
                raise ValueError("every batch document must be in the batch's partition")
            if op.kind == "replace":
                return ("replace", (doc["id"], doc), options)
            return (op.kind, (doc,), options)
        if op.id is None:
            raise ValueError(f"batch {op.kind} needs an id")
        if op.kind in ("delete", "read"):
            return (op.kind, (op.id,), options)
        if op.kind == "patch":
            predicate = filter_predicate(op.condition)
            if predicate is not None:
                options["filter_predicate"] = predicate
            return ("patch", (op.id, patch_operations(op.patch, self.spec)), options)
        raise ValueError(f"unknown batch operation {op.kind!r}")

    def change_feed(self, checkpoint: str | None = None, *, max_items: int = 100) -> ChangeFeedPage:
        """Changes after `checkpoint` (the SDK's continuation token); from the start if None."""
        kwargs: dict[str, Any] = {"max_item_count": max_items}
        if checkpoint is None:
            kwargs["start_time"] = "Beginning"

        def one_page() -> tuple[list[Document], str | None]:
            pages = self._client.query_items_change_feed(**kwargs).by_page(checkpoint)
            items = [_strip(d) for d in next(pages, [])]
            return items, pages.continuation_token

        items, token = self._call("change feed", one_page)
        if not token:
            raise Unavailable(f"{self.spec.name}: change feed returned no continuation")
        return ChangeFeedPage(items=items, checkpoint=token)


def _if_match(etag: str | None) -> dict[str, Any]:
    if etag is None:
        return {}
    from azure.core import MatchConditions

    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


class CosmosDocumentStore:
    """The documents port on one Cosmos DB database; the client is built once.

    `credential` is an account key (emulator/tests only) or a token credential such as
    `DefaultAzureCredential`. `containers` defaults to the registry. Extra keyword arguments
    go to `CosmosClient`.
    """

    def __init__(
        self,
        endpoint: str,
        database: str,
        credential: Any,
        *,
        connection_verify: bool = True,
        containers: Sequence[ContainerSpec] = CONTAINERS,
        **client_options: Any,
    ) -> None:
        from azure.core.exceptions import AzureError
        from azure.cosmos import CosmosClient
        from azure.cosmos.documents import ConnectionPolicy
        from azure.cosmos.exceptions import CosmosHttpResponseError

        self._errors: tuple[type[Exception], ...] = (CosmosHttpResponseError, AzureError)
        # 429s are retried by `with_throttle_retries`, within the work's budget; the SDK's
        # own throttle retries (9 within 30 s, for every caller alike) are turned off. A
        # zero `retry_throttle_total` would read as "unset", hence a policy. RetryOptions
        # is not exported, so build the type the policy holds.
        policy = ConnectionPolicy()
        policy.RetryOptions = type(policy.RetryOptions)(max_retry_attempt_count=0)
        options: dict[str, Any] = {
            "connection_policy": policy,
            "connection_verify": connection_verify,
        }
        options.update(client_options)
        try:
            self._client = CosmosClient(endpoint, credential=credential, **options)
        except self._errors as exc:
            raise _translate(exc, "connect") from exc
        self.specs = {spec.name: spec for spec in containers}
        self.location = f"{endpoint.rstrip('/')}/dbs/{database}"
        """Where the documents live: stores with the same location see the same data."""
        self._database_name = database
        self._database = self._client.get_database_client(database)
        self._containers: dict[str, CosmosContainer] = {}

    def container(self, name: str) -> Container:
        """The container of that name (it must be in the registry)."""
        found = self._containers.get(name)
        if found is None:
            spec = container_spec_in(self.specs, name)
            client = self._database.get_container_client(spec.name)
            found = self._containers.setdefault(name, CosmosContainer(client, spec, self._errors))
        return found

    def ensure_containers(self) -> None:
        """Create the database and every registered container (partition key, TTL, indexes).

        An existing container keeps its policy: in Azure the Bicep owns it.
        """
        from azure.cosmos import PartitionKey

        def ensure() -> None:
            database = self._client.create_database_if_not_exists(self._database_name)
            for spec in self.specs.values():
                options: dict[str, Any] = {}
                if spec.default_ttl is not None:
                    options["default_ttl"] = spec.default_ttl
                if spec.composite_indexes:
                    options["indexing_policy"] = indexing_policy(spec)
                database.create_container_if_not_exists(
                    id=spec.name,
                    partition_key=PartitionKey(path=spec.partition_key_path),
                    **options,
                )

        try:
            with_throttle_retries(ensure, self._errors, "ensure containers")
        except self._errors as exc:
            raise _translate(exc, "ensure containers") from exc

    def check(self) -> None:
        """Raise if the database cannot be read (readiness probe)."""
        try:
            with_throttle_retries(self._database.read, self._errors, "check")
        except self._errors as exc:
            raise _translate(exc, "check") from exc

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self._client.close()
