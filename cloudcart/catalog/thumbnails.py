"""The `media-thumbnails` function: thumbnails for every completed image upload.

It listens to `media.uploaded` events on the events topic (subscription `media-thumbnails`
in the topology and servicebus.bicep) and calls `make_thumbnails`, which is idempotent, so
a redelivered or replayed event only rewrites the same blobs. Videos get no thumbnails.
A malformed event raises: the message is retried and then dead-lettered (and alerted),
never dropped silently.

Register with `app.register_functions(bp)` in function_app.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

SUBSCRIPTION = "media-thumbnails"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


def handle_media_uploaded(message: func.ServiceBusMessage, services: Services) -> None:
    """Make the thumbnails a `media.uploaded` message asks for (ignores other events)."""
    # Imported here: function_app imports every blueprint, and an instance that never
    # makes a thumbnail should not load the media area (and its imaging library) to start.
    from cloudcart.catalog.media import MEDIA_UPLOADED, make_thumbnails
    from cloudcart.core.events import Event

    event = Event.from_message_body(message.get_body())
    if event.type != MEDIA_UPLOADED:
        logger.info("media-thumbnails: ignoring %s event %s", event.type, event.id)
        return
    product_id = str(event.data["productId"])
    media_id = str(event.data["mediaId"])
    if event.data.get("kind") != "image":
        logger.info("media-thumbnails: %s/%s is not an image", product_id, media_id)
        return
    made = make_thumbnails(services, product_id, media_id)
    if made is not None:
        logger.info("media-thumbnails: %d thumbnail(s) for %s/%s", len(made), product_id, media_id)


@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def media_thumbnails(message: func.ServiceBusMessage) -> None:
    """Service Bus trigger: thumbnails for a completed image upload."""
    # Imported here so that importing the blueprint never builds adapters.
    from cloudcart.composition import services

    handle_media_uploaded(message, services())
