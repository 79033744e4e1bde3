"""The `media-thumbnails` function: WebP thumbnails for completed image uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from PIL import Image
from pydantic import ValidationError

from cloudcart.catalog import media, thumbnails
from cloudcart.composition import Services
from cloudcart.core.events import new_event
from cloudcart.core.messages.topology import TOPOLOGY, SubjectIn
from cloudcart.core.ports.documents import Container, Document, DocumentStore
from cloudcart.core.settings import Settings
from tests.unit.test_media import PRODUCT_ID, product_document


def image_bytes(width: int, height: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    colour = (0, 0, 255, 128) if mode == "RGBA" else (0, 0, 255)
    Image.new(mode, (width, height), colour).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    found = Services(Settings(data_dir=tmp_path / "data"))
    found.documents.ensure_containers()
    found.blobs.ensure_containers([media.MEDIA_CONTAINER])
    yield found
    found.close()


@pytest.fixture
def catalog(services: Services) -> Container:
    container = services.documents.container("catalog")
    container.create(product_document())
    return container


def attach(
    services: Services,
    catalog: Container,
    data: bytes,
    *,
    content_type: str = "image/png",
    kind: str = "image",
) -> str:
    """Upload and complete media through the service; its id."""
    ticket = media.request_upload(
        services,
        PRODUCT_ID,
        kind=kind,  # type: ignore[arg-type]
        content_type=content_type,
        size=len(data),
    )
    name = media.original_blob_name(PRODUCT_ID, ticket.media_id)
    services.blobs.put(media.MEDIA_CONTAINER, name, data, content_type=content_type)
    media.complete_upload(services, PRODUCT_ID, ticket.media_id)
    return ticket.media_id


def message_for(media_id: str, kind: str = "image", event_type: str = "media.uploaded") -> Any:
    event = new_event(
        event_type,
        PRODUCT_ID,
        {
            "productId": PRODUCT_ID,
            "mediaId": media_id,
            "blob": media.original_blob_name(PRODUCT_ID, media_id),
            "contentType": "image/png",
            "kind": kind,
        },
    )
    return func.ServiceBusMessage(body=event.to_json_bytes(), content_type="application/json")


def decoded(services: Services, name: str) -> Image.Image:
    blob = services.blobs.get(media.MEDIA_CONTAINER, name)
    assert blob.properties.content_type == "image/webp"
    image = Image.open(io.BytesIO(blob.data))
    image.load()
    return image


def test_thumbnails_are_written_and_recorded(services: Services, catalog: Container) -> None:
    media_id = attach(services, catalog, image_bytes(2000, 1000))
    thumbnails.handle_media_uploaded(message_for(media_id), services)

    entry = catalog.read(PRODUCT_ID, PRODUCT_ID)["media"][0]
    expected = {"w1024": (1024, 512), "w480": (480, 240), "w160": (160, 80)}
    assert {k: (v["width"], v["height"]) for k, v in entry["thumbnails"].items()} == expected
    for key, size in expected.items():
        name = f"products/{PRODUCT_ID}/{media_id}/{key}.webp"
        assert entry["thumbnails"][key]["blob"] == name
        image = decoded(services, name)
        assert image.format == "WEBP"
        assert image.size == size


def test_rerunning_is_idempotent(services: Services, catalog: Container) -> None:
    media_id = attach(services, catalog, image_bytes(600, 900, "JPEG"), content_type="image/jpeg")
    message = message_for(media_id)
    thumbnails.handle_media_uploaded(message, services)
    first = catalog.read(PRODUCT_ID, PRODUCT_ID)
    thumbnails.handle_media_uploaded(message, services)
    second = catalog.read(PRODUCT_ID, PRODUCT_ID)
    # Nothing changed, so nothing was written.
    assert second["_etag"] == first["_etag"]
    sizes = {k: (v["width"], v["height"]) for k, v in second["media"][0]["thumbnails"].items()}
    # Never upscaled: the 1024 box keeps the original's 600x900.
    assert sizes == {"w1024": (600, 900), "w480": (320, 480), "w160": (107, 160)}


def test_transparency_survives(services: Services, catalog: Container) -> None:
    media_id = attach(services, catalog, image_bytes(300, 300, "PNG", "RGBA"))
    thumbnails.handle_media_uploaded(message_for(media_id), services)
    image = decoded(services, f"products/{PRODUCT_ID}/{media_id}/w160.webp")
    assert image.mode == "RGBA"
    assert image.getpixel((80, 80))[3] < 200  # type: ignore[index]


def test_videos_and_other_events_get_no_thumbnails(services: Services, catalog: Container) -> None:
    video_id = attach(services, catalog, b"\x00" * 50, content_type="video/mp4", kind="video")
    before = catalog.read(PRODUCT_ID, PRODUCT_ID)
    thumbnails.handle_media_uploaded(message_for(video_id, kind="video"), services)
    thumbnails.handle_media_uploaded(message_for(video_id, event_type="product.updated"), services)
    # Even a (wrong) image event for a video entry does nothing.
    assert media.make_thumbnails(services, PRODUCT_ID, video_id) is None
    assert catalog.read(PRODUCT_ID, PRODUCT_ID)["_etag"] == before["_etag"]


def test_missing_product_or_media_is_nothing_to_do(services: Services, catalog: Container) -> None:
    assert media.make_thumbnails(services, "no-such-product", "med_x") is None
    assert media.make_thumbnails(services, PRODUCT_ID, "med_x") is None


def test_a_malformed_message_raises_so_it_is_retried_then_dead_lettered(
    services: Services,
) -> None:
    with pytest.raises(ValidationError):
        thumbnails.handle_media_uploaded(func.ServiceBusMessage(body=b"{not json"), services)


class _EditsBeforeFirstReplace:
    """A catalog container whose first `replace` is preceded by someone else's edit."""

    def __init__(self, inner: Container) -> None:
        self._inner = inner
        self.spec = inner.spec
        self.edited = False

    def replace(self, document: Document, *, if_match: str | None = None) -> Document:
        if not self.edited:
            self.edited = True
            current = self._inner.read(str(document["id"]), str(document["id"]))
            current["title"] = "OPPO A92 (edited)"
            self._inner.replace(current)
        return self._inner.replace(document, if_match=if_match)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Store:
    def __init__(self, inner: DocumentStore, catalog: _EditsBeforeFirstReplace) -> None:
        self._inner = inner
        self._catalog = catalog

    def container(self, name: str) -> Any:
        return self._catalog if name == "catalog" else self._inner.container(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_concurrent_edit_is_kept_and_thumbnails_still_recorded(
    services: Services, catalog: Container
) -> None:
    media_id = attach(services, catalog, image_bytes(500, 500))
    racing = _EditsBeforeFirstReplace(catalog)
    wrapped = Services(
        services.settings,
        adapters={"documents": _Store(services.documents, racing), "blobs": services.blobs},
    )
    made = media.make_thumbnails(wrapped, PRODUCT_ID, media_id)
    assert racing.edited
    product = catalog.read(PRODUCT_ID, PRODUCT_ID)
    assert product["title"] == "OPPO A92 (edited)"
    assert made is not None
    assert product["media"][0]["thumbnails"] == made


def test_the_blueprint_matches_the_topology() -> None:
    app = func.FunctionApp()
    app.register_functions(thumbnails.bp)
    [function] = app.get_functions()
    trigger = function.get_trigger()
    assert trigger is not None
    binding = trigger.get_dict_repr()
    assert binding["type"] == "serviceBusTrigger"
    assert binding["topicName"] == "%EVENTS_TOPIC%"
    assert binding["subscriptionName"] == thumbnails.SUBSCRIPTION
    subscription = TOPOLOGY.entity("events").subscriptions  # type: ignore[union-attr]
    [mine] = [s for s in subscription if s.name == thumbnails.SUBSCRIPTION]
    assert isinstance(mine.filter, SubjectIn)
    assert mine.filter.subjects == (media.MEDIA_UPLOADED,)
