"""Cosmos DB's rules for documents, which every documents adapter applies alike.

Limits (document and batch sizes, operations per patch and batch, keys per read-many),
which properties the database owns, how an id, a partition key, a TTL and a field path
are checked, and the compact JSON the sizes are measured in. The embedded adapter enforces
them because SQLite would not; the Cosmos adapter checks them before a request, so both
refuse the same input with the same `ValueError` before anything is written.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import orjson

from cloudcart.core.ports.documents import (
    MAX_READ_MANY_KEYS,
    BatchOp,
    ContainerSpec,
    Document,
    PatchOp,
)

MAX_BATCH_OPERATIONS = 100
"""Cosmos DB's limit on operations in one transactional batch; enforced here too."""

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
"""Cosmos DB's limit on one document and on one batch request (2 MB); enforced here too."""

MAX_PATCH_OPERATIONS = 10
"""Cosmos DB's limit on operations in one patch; enforced here too."""

SYSTEM_PROPERTIES = frozenset({"_etag", "_ts", "_rid", "_self", "_attachments", "_lsn"})
"""Properties the database owns; stripped from documents callers hand in."""

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def field_path(field: str) -> list[str]:
    """Split a dotted field (`address.country`) into checked identifier segments.

    Segments are restricted to identifiers so a path can be written into Cosmos SQL and
    SQLite JSON paths without any quoting ambiguity.
    """
    parts = field.split(".")
    if not field or not all(IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"invalid field path {field!r}: use dotted identifiers like 'a.b_c'")
    return parts


def clean_document(document: Document, *, deep: bool = True) -> Document:
    """A copy of `document` without system properties, with its `id` checked; deep unless
    `deep` is False (for a caller that serialises it before anyone could change it)."""
    doc = {
        k: copy.deepcopy(v) if deep else v
        for k, v in document.items()
        if k not in SYSTEM_PROPERTIES
    }
    doc_id = doc.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError("a document needs a non-empty string 'id'")
    if any(ch in doc_id for ch in "/\\?#"):
        raise ValueError(f"document id {doc_id!r} must not contain '/', '\\', '?' or '#'")
    return doc


def partition_key_of(spec: ContainerSpec, document: Document) -> str:
    """The partition key value of `document` in a container of `spec` (ValueError if absent)."""
    value: Any = document
    for part in spec.partition_key_field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(
                f"document {document.get('id')!r} has no partition key field "
                f"{spec.partition_key_field!r} (container {spec.name!r})"
            )
        value = value[part]
    if not isinstance(value, str):
        raise ValueError(
            f"partition key {spec.partition_key_field!r} of document {document.get('id')!r} "
            "must be a string"
        )
    return value


def effective_ttl(spec: ContainerSpec, document: Document) -> int | None:
    """Seconds until `document` expires after a write, or None if it never does.

    Cosmos semantics: with no container default TTL, per-document `ttl` is ignored; -1
    (either level) means never; a document's own positive `ttl` overrides the default.
    """
    if spec.default_ttl is None:
        return None
    ttl = document.get("ttl")
    if ttl is None:
        return None if spec.default_ttl == -1 else spec.default_ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl == 0 or ttl < -1:
        raise ValueError(f"ttl must be -1 or a positive integer, not {ttl!r}")
    return None if ttl == -1 else ttl


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON: store strings, numbers and lists")


# orjson instead of the json module: the embedded store serialises every document it
# writes with this, and serialising was much of what it spent its time on. Dates and
# dataclasses are refused, as the json module (and so the Cosmos SDK) refuses them.
_DUMP_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def compact_json(value: Any) -> str:
    """`value` as compact UTF-8 JSON text, as Cosmos DB measures sizes."""
    return orjson.dumps(value, default=_refuse, option=_DUMP_OPTIONS).decode("utf-8")


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON: how Cosmos DB measures its size limits."""
    return len(compact_json(value).encode("utf-8"))


def check_size(document: Document, size: int) -> None:
    """ValueError when a document of `size` bytes is over the 2 MB limit."""
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"document {document.get('id')!r} is too large: {size} bytes, "
            f"at most {MAX_DOCUMENT_BYTES} (2 MB)"
        )


def check_document_size(document: Document) -> int:
    """Reject a document (without system properties) over Cosmos DB's 2 MB; returns its
    size in bytes."""
    size = json_size({k: v for k, v in document.items() if k not in SYSTEM_PROPERTIES})
    check_size(document, size)
    return size


def check_patch_size(operations: Sequence[PatchOp]) -> None:
    """Reject a patch over Cosmos DB's operation limit."""
    if len(operations) > MAX_PATCH_OPERATIONS:
        raise ValueError(
            f"a patch holds at most {MAX_PATCH_OPERATIONS} operations, got {len(operations)}"
        )


def check_batch_size(operations: Sequence[BatchOp], *, documents: bool = True) -> int:
    """Reject empty batches and batches over Cosmos DB's limits: operations, operations per
    patch, and 2 MB of documents and patch values together. Returns the bytes counted;
    with `documents` False the documents are left for the caller to size (and add)."""
    if not operations:
        raise ValueError("a batch needs at least one operation")
    if len(operations) > MAX_BATCH_OPERATIONS:
        raise ValueError(
            f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, got {len(operations)}"
        )
    size = 0
    for op in operations:
        check_patch_size(op.patch)
        if op.document is not None and documents:
            size += check_document_size(op.document)
        size += sum(json_size(p.value) for p in op.patch)
    check_batch_bytes(size)
    return size


def read_many_keys(keys: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """`keys` without repeats, in order; ValueError past `MAX_READ_MANY_KEYS` keys."""
    if len(keys) > MAX_READ_MANY_KEYS:
        raise ValueError(
            f"read_many takes at most {MAX_READ_MANY_KEYS} keys, got {len(keys)}: "
            "split them so that each call stays one bounded request"
        )
    wanted: dict[tuple[str, str], None] = {}
    for key in keys:
        if not (
            isinstance(key, tuple)
            and len(key) == 2
            and isinstance(key[0], str)
            and isinstance(key[1], str)
        ):
            raise ValueError(f"a read_many key is an (id, partition key) pair of strings: {key!r}")
        wanted[key] = None
    return list(wanted)


def check_batch_bytes(size: int) -> None:
    """ValueError when a batch's documents add up to more than the 2 MB limit."""
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"the batch is too large: {size} bytes of documents, at most {MAX_DOCUMENT_BYTES}"
        )


def container_spec_in(specs: dict[str, ContainerSpec], name: str) -> ContainerSpec:
    """The spec named `name` among a store's containers; KeyError names unknown ones."""
    try:
        return specs[name]
    except KeyError:
        raise KeyError(f"container {name!r} is not in the registry") from None
