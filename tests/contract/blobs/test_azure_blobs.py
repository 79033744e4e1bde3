"""What only the Azure adapter does: user-delegation signing and SDK error mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobServiceClient, UserDelegationKey
from pydantic import SecretStr

from cloudcart.core.blobs import azure as azure_blobs
from cloudcart.core.blobs.azure import AzureBlobStore, DelegationKeyCache
from cloudcart.core.errors import BlobError
from cloudcart.core.settings import Adapter, Settings
from tests.fakes.azurite import ACCOUNT_KEY, ACCOUNT_NAME


class _FakeBlobClient:
    def __init__(self, url: str) -> None:
        self.url = url


class FakeDelegatingService:
    """The slice of BlobServiceClient the signing path uses, recording key requests."""

    account_name = "shop"

    def __init__(self) -> None:
        self.key_requests: list[tuple[datetime, datetime]] = []

    def get_user_delegation_key(
        self, key_start_time: datetime, key_expiry_time: datetime
    ) -> UserDelegationKey:
        self.key_requests.append((key_start_time, key_expiry_time))
        key = UserDelegationKey()
        key.signed_oid = "00000000-0000-0000-0000-000000000001"
        key.signed_tid = "00000000-0000-0000-0000-000000000002"
        key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service = "b"
        key.signed_version = "2026-10-06"
        key.value = "a2V5LWJ5dGVzLWZvci10ZXN0cy1vbmx5LTMyYnl0ZXM="
        return key

    def get_blob_client(self, container: str, name: str) -> _FakeBlobClient:
        return _FakeBlobClient(f"https://shop.blob.core.windows.net/{container}/{name}")


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_delegated_upload_sas_is_create_write_only_with_signed_content_type() -> None:
    service = FakeDelegatingService()
    store = AzureBlobStore(cast(Any, service))

    signed = store.upload_url("media", "p/1.png", content_type="image/png", expires_in=600)

    query = _query(signed.url)
    assert query["sp"] == ["cw"]
    assert query["sr"] == ["b"]
    assert query["skoid"] == ["00000000-0000-0000-0000-000000000001"]
    assert query["srh"] == ["Content-Type"]
    assert "sig" in query
    assert signed.url.startswith("https://shop.blob.core.windows.net/media/p/1.png?")
    assert signed.headers == {"Content-Type": "image/png", "x-ms-blob-type": "BlockBlob"}


def test_delegated_read_sas_is_read_only() -> None:
    store = AzureBlobStore(cast(Any, FakeDelegatingService()))

    query = _query(store.read_url("media", "p/1.png"))

    assert query["sp"] == ["r"]
    assert "srh" not in query


def test_delegation_key_is_cached_until_a_url_would_outlive_it() -> None:
    service = FakeDelegatingService()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    cache = DelegationKeyCache(
        cast(Any, service),
        lifetime=timedelta(hours=1),
        margin=timedelta(minutes=5),
        clock=lambda: now,
    )

    first = cache.key_for(now + timedelta(minutes=15))
    again = cache.key_for(now + timedelta(minutes=50))
    assert again is first
    assert len(service.key_requests) == 1

    # Needs the key until 1h10m from now: the cached one (1h) is too short.
    longer = cache.key_for(now + timedelta(hours=1, minutes=5))
    assert longer is not first
    assert len(service.key_requests) == 2
    start, expiry = service.key_requests[1]
    assert start < now
    assert expiry >= now + timedelta(hours=1, minutes=10)


def test_delegation_key_cannot_exceed_seven_days() -> None:
    cache = DelegationKeyCache(cast(Any, FakeDelegatingService()))

    with pytest.raises(ValueError, match="7 days"):
        cache.key_for(datetime.now(UTC) + timedelta(days=8))


def test_unreachable_storage_is_a_blob_error() -> None:
    # Nothing listens on the discard port; no retries, so the failure is immediate.
    service = BlobServiceClient(
        "http://127.0.0.1:9/devstoreaccount1",
        credential={"account_name": ACCOUNT_NAME, "account_key": ACCOUNT_KEY},
        retry_total=0,
    )
    store = AzureBlobStore(service, account_key=ACCOUNT_KEY)

    with pytest.raises(BlobError):
        store.check()
    with pytest.raises(BlobError):
        store.put("media", "a.txt", b"a", content_type="text/plain")


def test_from_settings_needs_an_account_url_or_connection_string() -> None:
    with pytest.raises(ValueError, match="Storage__blobServiceUri"):
        azure_blobs.from_settings(Settings(blobs_adapter=Adapter.azure))


def test_from_settings_with_connection_string_signs_with_the_account_key(
    azurite_connection_string: str,
) -> None:
    store = azure_blobs.from_settings(
        Settings(
            blobs_adapter=Adapter.azure, blob_connection_string=SecretStr(azurite_connection_string)
        )
    )
    assert isinstance(store, AzureBlobStore)

    query = _query(store.read_url("media", "a.txt"))

    assert "skoid" not in query
    assert query["sp"] == ["r"]
