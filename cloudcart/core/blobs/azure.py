"""The Azure blobs adapter: Blob Storage through `azure-storage-blob`, with SAS URLs.

In Azure the app reaches storage with its managed identity and signs SAS URLs with a
user-delegation key (no account key anywhere). With `BLOB_CONNECTION_STRING` (Azurite only)
it uses the connection string's account key instead, because Azurite cannot issue
user-delegation keys without OAuth over HTTPS.

The SDK is imported inside functions so that apps not using this adapter never pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudcart.core.errors import BlobError, BlobNotFound
from cloudcart.core.ports.blobs import Blob, BlobProperties, BlobStore, SignedUrl
from cloudcart.core.settings import Settings

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, UserDelegationKey

# SAS start times are back-dated so a client whose clock runs a little behind Azure's can
# use a URL the moment it gets it.
_CLOCK_SKEW = timedelta(minutes=5)
# Blob Storage refuses user-delegation keys valid for longer than 7 days.
_MAX_DELEGATION_KEY_LIFETIME = timedelta(days=7)
_DELEGATION_KEY_LIFETIME = timedelta(days=1)


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _mapped_errors(what: str, *, missing_container: bool = False) -> Iterator[None]:
    """Turn SDK exceptions into the port's errors; `what` names the target in messages."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        yield
    except ResourceNotFoundError as exc:
        if missing_container:
            # A write can only 404 on the container; that is a setup error, not a missing blob.
            raise BlobError(f"{what}: the container does not exist") from exc
        raise BlobNotFound(f"{what} does not exist") from exc
    except AzureError as exc:
        raise BlobError(f"blob storage failed for {what}: {exc}") from exc


class DelegationKeyCache:
    """Keeps one user-delegation key and fetches a new one shortly before it is too old.

    A SAS signed with a delegation key stops working when the key expires, so a key is
    reused only if it outlives the SAS being signed by at least `margin`.
    """

    def __init__(
        self,
        service: BlobServiceClient,
        *,
        lifetime: timedelta = _DELEGATION_KEY_LIFETIME,
        margin: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if lifetime > _MAX_DELEGATION_KEY_LIFETIME:
            raise ValueError("user-delegation keys are valid for at most 7 days")
        self._service = service
        self._lifetime = lifetime
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._key: UserDelegationKey | None = None
        self._key_expiry: datetime | None = None

    def key_for(self, sas_expiry: datetime) -> UserDelegationKey:
        """A delegation key valid until at least `sas_expiry` (plus the margin)."""
        with self._lock:
            needed_until = sas_expiry + self._margin
            if (
                self._key is not None
                and self._key_expiry is not None
                and (self._key_expiry >= needed_until)
            ):
                return self._key
            now = self._clock()
            expiry = max(now + self._lifetime, needed_until)
            if expiry - now > _MAX_DELEGATION_KEY_LIFETIME:
                raise ValueError("a delegation-signed URL can be valid for at most 7 days")
            with _mapped_errors("the user-delegation key"):
                key = self._service.get_user_delegation_key(
                    key_start_time=now - _CLOCK_SKEW, key_expiry_time=expiry
                )
            self._key, self._key_expiry = key, expiry
            return key


class AzureBlobStore:
    """`BlobStore` on Azure Blob Storage (or Azurite).

    Give either `account_key` (Azurite: SAS signed with the shared key) or nothing, in which
    case SAS URLs are signed with a cached user-delegation key from the client's identity.
    """

    def __init__(self, service: BlobServiceClient, *, account_key: str | None = None) -> None:
        self._service = service
        self._account_key = account_key
        self._delegation = None if account_key else DelegationKeyCache(service)

    def _blob(self, container: str, name: str) -> Any:
        return self._service.get_blob_client(container, name)

    def put(self, container: str, name: str, data: bytes, *, content_type: str) -> BlobProperties:
        """Write (or overwrite) a blob."""
        from azure.storage.blob import ContentSettings

        with _mapped_errors(f"blob {container}/{name}", missing_container=True):
            result = self._blob(container, name).upload_blob(
                data,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type),
            )
        return BlobProperties(
            container=container,
            name=name,
            size=len(data),
            content_type=content_type,
            etag=result["etag"],
            last_modified=result["last_modified"],
        )

    @staticmethod
    def _to_properties(container: str, name: str, props: Any) -> BlobProperties:
        return BlobProperties(
            container=container,
            name=name,
            size=props.size,
            content_type=props.content_settings.content_type or "application/octet-stream",
            etag=props.etag,
            last_modified=props.last_modified,
        )

    def get(self, container: str, name: str) -> Blob:
        """Read a blob. Raises BlobNotFound."""
        with _mapped_errors(f"blob {container}/{name}"):
            downloader = self._blob(container, name).download_blob()
            data = downloader.readall()
        return Blob(
            data=data, properties=self._to_properties(container, name, downloader.properties)
        )

    def properties(self, container: str, name: str) -> BlobProperties:
        """Size, type and ETag without the bytes. Raises BlobNotFound."""
        with _mapped_errors(f"blob {container}/{name}"):
            props = self._blob(container, name).get_blob_properties()
        return self._to_properties(container, name, props)

    def delete(self, container: str, name: str) -> None:
        """Delete a blob (and its snapshots). Raises BlobNotFound."""
        with _mapped_errors(f"blob {container}/{name}"):
            self._blob(container, name).delete_blob(delete_snapshots="include")

    def _sas(
        self,
        container: str,
        name: str,
        permission: Any,
        expires_in: int,
        *,
        request_headers: dict[str, str] | None = None,
    ) -> tuple[str, datetime]:
        from azure.storage.blob import generate_blob_sas

        now = _now()
        expiry = now + timedelta(seconds=expires_in)
        common: dict[str, Any] = {
            "account_name": self._service.account_name,
            "container_name": container,
            "blob_name": name,
            "permission": permission,
            "expiry": expiry,
            "start": now - _CLOCK_SKEW,
        }
        if self._delegation is None:
            token = generate_blob_sas(account_key=self._account_key, **common)
        else:
            # Signed request headers (srh) exist only for user-delegation SAS; with them Azure
            # itself refuses an upload whose Content-Type differs from the signed one.
            token = generate_blob_sas(
                user_delegation_key=self._delegation.key_for(expiry),
                request_headers=request_headers,
                **common,
            )
        return f"{self._blob(container, name).url}?{token}", expiry

    def upload_url(
        self, container: str, name: str, *, content_type: str, expires_in: int = 900
    ) -> SignedUrl:
        """A SAS URL allowing only create+write of exactly this blob, until it expires."""
        from azure.storage.blob import BlobSasPermissions

        headers = {"Content-Type": content_type, "x-ms-blob-type": "BlockBlob"}
        url, expiry = self._sas(
            container,
            name,
            BlobSasPermissions(create=True, write=True),
            expires_in,
            request_headers={"Content-Type": content_type},
        )
        return SignedUrl(url=url, method="PUT", expires_at=expiry, headers=headers)

    def read_url(self, container: str, name: str, *, expires_in: int = 3600) -> str:
        """A read-only SAS URL for this blob."""
        from azure.storage.blob import BlobSasPermissions

        url, _ = self._sas(container, name, BlobSasPermissions(read=True), expires_in)
        return url

    def ensure_containers(self, names: list[str]) -> None:
        """Create containers if missing (Azurite and dev accounts; Bicep creates them in Azure)."""
        from azure.core.exceptions import ResourceExistsError

        for container in names:
            with _mapped_errors(f"container {container}"), suppress(ResourceExistsError):
                self._service.create_container(container)

    def check(self) -> None:
        """Raise BlobError if the account cannot be reached with our credentials."""
        with _mapped_errors("the storage account"):
            # One page of at most one container: a cheap authenticated round trip.
            pages = self._service.list_containers(results_per_page=1).by_page()
            next(pages, None)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._service.close()


def from_settings(settings: Settings) -> BlobStore:
    """The Azure blob store of these settings.

    `BLOB_CONNECTION_STRING` (Azurite only) wins; otherwise `Storage__blobServiceUri` with
    `DefaultAzureCredential` (the app's managed identity in Azure).
    """
    from azure.storage.blob import BlobServiceClient

    if settings.blob_connection_string is not None:
        service = BlobServiceClient.from_connection_string(
            settings.blob_connection_string.get_secret_value()
        )
        account_key = getattr(service.credential, "account_key", None)
        if not account_key:
            raise ValueError("BLOB_CONNECTION_STRING must contain an AccountKey")
        return AzureBlobStore(service, account_key=account_key)
    if not settings.blob_account_url:
        raise ValueError(
            "the azure blobs adapter needs Storage__blobServiceUri (or BLOB_CONNECTION_STRING "
            "for Azurite)"
        )
    from azure.identity import DefaultAzureCredential

    return AzureBlobStore(
        BlobServiceClient(settings.blob_account_url, credential=DefaultAzureCredential())
    )
