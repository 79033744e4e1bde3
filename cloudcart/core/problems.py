"""The catalogue of problem types: every `type` the API answers a problem document with.

A problem type is a slug expanded under `PROBLEM_TYPE_BASE`
(`https://cloudcart.dev/problems/sku-taken`); slugs are public contract and are never
renamed. `tests/unit/test_problem_catalogue.py` checks the catalogue against the code (every
slug the code can answer with is here, with its status and title, and nothing else is) and
`docs/problems.md` against `render_markdown()`:

    .venv/bin/python -m cloudcart.core.problems > docs/problems.md
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

PROBLEM_TYPE_BASE = "https://cloudcart.dev/problems/"


def problem_type_uri(slug: str) -> str:
    """The `type` URI of a problem type (`sku-taken` → `https://cloudcart.dev/problems/sku-taken`)."""
    return PROBLEM_TYPE_BASE + slug


@dataclass(frozen=True)
class ProblemType:
    """One problem type: what a client can rely on whenever a problem carries it.

    `status` is the HTTP status it usually comes with, `other_statuses` any other it is
    answered with; `title` is the problem's `title` member, the same for every occurrence;
    `description` says when it happens and what the client should do. `dev_only` types come
    only from the endpoints of the embedded local adapters (`/dev/...`).
    """

    slug: str
    status: int
    title: str
    description: str
    other_statuses: tuple[int, ...] = ()
    dev_only: bool = False

    @property
    def statuses(self) -> tuple[int, ...]:
        """Every status this type is answered with, the usual one first."""
        return (self.status, *self.other_statuses)

    @property
    def uri(self) -> str:
        """The `type` member of its problem documents."""
        return problem_type_uri(self.slug)


_BAD_REQUEST = "Bad Request"
_UNAUTHORIZED = "Unauthorized"
_FORBIDDEN = "Forbidden"
_NOT_FOUND = "Not Found"
_CONFLICT = "Conflict"
_UNPROCESSABLE = "Unprocessable Content"
_TOO_MANY = "Too Many Requests"
_UNAVAILABLE = "Service Unavailable"

_TYPES = (
    # --- request shape and identity -------------------------------------------------------
    ProblemType(
        "validation-error",
        422,
        _UNPROCESSABLE,
        "The path, query, headers or body do not match the operation's schema; `errors` lists "
        "every reason (`location`, `message`, `type`; at most 50). Fix the named values and "
        "send again: nothing was changed.",
    ),
    ProblemType(
        "invalid-token",
        401,
        _UNAUTHORIZED,
        "No bearer token (or session cookie) was sent, the token is invalid or expired, or the "
        "browser session has ended; `WWW-Authenticate` says why. Get a new token or sign in "
        "again.",
    ),
    ProblemType(
        "forbidden",
        403,
        _FORBIDDEN,
        "The caller is authenticated but lacks the admin role the operation requires. "
        "Retrying with the same identity does not help.",
    ),
    ProblemType(
        "csrf-failed",
        403,
        _FORBIDDEN,
        "A cookie-authenticated unsafe request, or a sign-out, came without the session's "
        "`X-CSRF-Token` header or with a wrong one. Read the token from `GET /auth/session` "
        "and send it.",
    ),
    ProblemType(
        "identity-unavailable",
        503,
        _UNAVAILABLE,
        "The identity provider could not be reached to verify a token or to run a sign-in. "
        "Retry shortly.",
    ),
    ProblemType(
        "not-signed-in",
        401,
        _UNAUTHORIZED,
        "`GET /auth/session` or `POST /auth/logout` without a live session cookie. Sign in "
        "through `/auth/login`.",
    ),
    ProblemType(
        "invalid-return-to",
        400,
        _BAD_REQUEST,
        "`returnTo` of a sign-in is neither a path on this site nor a URL on an allowed "
        "origin. Pass a path such as `/account`.",
    ),
    ProblemType(
        "flow-unavailable",
        400,
        _BAD_REQUEST,
        "The requested sign-in flow (profile edit, password reset) is not configured for "
        "this shop's identity provider. Use the plain sign-in flow.",
    ),
    ProblemType(
        "sign-in-unavailable",
        503,
        _UNAVAILABLE,
        "Web sign-in is not configured on this deployment (authority or client credentials "
        "missing). Retrying does not help until an operator configures it.",
    ),
    ProblemType(
        "sign-in-invalid",
        400,
        _BAD_REQUEST,
        "The sign-in callback has no state, a state that is unknown, expired or already "
        "used, or a response the sign-in library rejects. Start again from `/auth/login`.",
    ),
    ProblemType(
        "sign-in-failed",
        401,
        _UNAUTHORIZED,
        "The identity provider reported an error, issued no token, or issued one the API "
        "does not accept; the detail names the reason. Start again from `/auth/login`.",
    ),
    # --- customers and verification -------------------------------------------------------
    ProblemType(
        "address-limit",
        409,
        _CONFLICT,
        "The customer already keeps the most addresses allowed (20). Delete one before "
        "adding another.",
    ),
    ProblemType(
        "default-address-required",
        422,
        _UNPROCESSABLE,
        "A replacement of the default address sets `isDefault: false`. Make another "
        "address the default instead.",
    ),
    ProblemType(
        "invalid-consent-source",
        422,
        _UNPROCESSABLE,
        "`X-Consent-Source` is not one of `web`, `app`, `api`, `support`. Send one of them "
        "or leave the header out.",
    ),
    ProblemType(
        "concurrent-change",
        409,
        _CONFLICT,
        "The profile, its addresses or a verification kept changing under concurrent "
        "requests past every retry; nothing was changed. Send the request again.",
    ),
    ProblemType(
        "no-email",
        409,
        _CONFLICT,
        "A verification code was requested for an email the profile does not have. Set one "
        "first (`PATCH /api/me/profile`).",
    ),
    ProblemType(
        "no-phone",
        409,
        _CONFLICT,
        "A verification code was requested for a phone number the profile does not have. "
        "Set one first (`PATCH /api/me/profile`).",
    ),
    ProblemType(
        "already-verified",
        409,
        _CONFLICT,
        "The profile's current email or phone is verified already; there is nothing to do.",
    ),
    ProblemType(
        "verification-rate-limited",
        429,
        _TOO_MANY,
        "Too many codes were sent for this customer and channel, or to this destination, "
        "recently. Ask again after `Retry-After` seconds (also `retryAfter` in the body).",
    ),
    ProblemType(
        "no-pending-verification",
        404,
        _NOT_FOUND,
        "No code waits for confirmation on this channel (none was requested, or it was "
        "replaced, refused or erased). Request a code first.",
    ),
    ProblemType(
        "verification-code-invalid",
        422,
        _UNPROCESSABLE,
        "The code does not match; `attemptsLeft` says how many more tries this code allows.",
    ),
    ProblemType(
        "verification-code-expired",
        410,
        "Gone",
        "The code is older than its 10 minutes. Request a new one.",
    ),
    ProblemType(
        "verification-attempts-exhausted",
        429,
        _TOO_MANY,
        "The code was entered wrongly too many times and no longer works; waiting does not "
        "help (no `Retry-After`). Request a new code.",
    ),
    ProblemType(
        "verification-destination-changed",
        409,
        _CONFLICT,
        "The profile's email or phone changed after the code was sent, so the code proves "
        "nothing and is discarded. Request a new code.",
    ),
    ProblemType(
        "notification-provider-unavailable",
        503,
        _UNAVAILABLE,
        "The email or SMS provider is busy or down; the code may still arrive. Ask again "
        "after `Retry-After` seconds.",
    ),
    ProblemType(
        "destination-rejected",
        422,
        _UNPROCESSABLE,
        "The provider refuses the profile's email address or phone number (invalid, "
        "bounced, opted out). Change it on the profile and retry.",
    ),
    # --- catalog, media, inventory and imports --------------------------------------------
    ProblemType(
        "product-not-found",
        404,
        _NOT_FOUND,
        "No such product, or none this caller may see (a draft on the storefront); also "
        "from media uploads and back-in-stock requests naming an unknown product.",
    ),
    ProblemType(
        "unknown-category",
        422,
        _UNPROCESSABLE,
        "The product's category or a category's parent does not exist, or a category names "
        "itself as its parent. Create the category first or fix the id.",
    ),
    ProblemType(
        "category-exists",
        409,
        _CONFLICT,
        "A category with that id exists already. Choose another id or update that category.",
    ),
    ProblemType(
        "sku-taken",
        409,
        _CONFLICT,
        "A SKU of the product already belongs to another product; `sku` names it. Use another SKU.",
    ),
    ProblemType(
        "stale-etag",
        412,
        "Precondition Failed",
        "The product changed since the caller read it (`If-Match` does not match its ETag), "
        "or while it was being updated. Read it again and reapply the change.",
    ),
    ProblemType(
        "invalid-cursor",
        400,
        _BAD_REQUEST,
        "A catalog listing or search cursor is malformed, forged or belongs to a different "
        "query. Start again without a cursor.",
    ),
    ProblemType(
        "sku-not-found",
        404,
        _NOT_FOUND,
        "A stock adjustment or an imported line names a SKU that belongs to no product. "
        "Check the SKU.",
    ),
    ProblemType(
        "stock-busy",
        409,
        _CONFLICT,
        "The SKU's stock kept changing under concurrent moves past every retry; nothing was "
        "changed. Send the request again.",
    ),
    ProblemType(
        "not-ndjson",
        400,
        _BAD_REQUEST,
        "An import body is not NDJSON (another content type, or the first line is not a "
        "JSON object); nothing was imported. Send `application/x-ndjson`, one JSON object "
        "per line.",
    ),
    ProblemType(
        "media-rejected",
        422,
        "Media rejected",
        "A declared upload or the uploaded file breaks a rule: content type not of the "
        "declared kind, size not positive or over the limit, not an image, no pixels. Fix "
        "the file and declare it again.",
    ),
    ProblemType(
        "media-not-found",
        404,
        "Media not found",
        "No upload with that media id was declared for this product. Declare the upload first.",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported Media Type",
        "The declared content type is not one accepted for product media (the detail lists "
        "them); locally, also a dev token request whose body is not form-encoded.",
    ),
    ProblemType(
        "upload-missing",
        409,
        "Upload missing",
        "`complete` was called before the file was uploaded to its signed URL. Upload it, "
        "then complete again.",
    ),
    # --- marketing ------------------------------------------------------------------------
    ProblemType(
        "unknown-sku",
        404,
        _NOT_FOUND,
        "No product sells that SKU (adding to the cart), or the product does not "
        "(back-in-stock subscriptions). Check the SKU.",
    ),
    ProblemType(
        "notify-me-not-found",
        404,
        _NOT_FOUND,
        "The customer has no back-in-stock subscription for that SKU.",
    ),
    ProblemType(
        "too-many-notify-me",
        409,
        _CONFLICT,
        "The customer already holds the most back-in-stock subscriptions allowed (100). "
        "Cancel one first.",
    ),
    # --- storefront events ----------------------------------------------------------------
    ProblemType(
        "malformed-event-batch",
        400,
        _BAD_REQUEST,
        'The body is not `{"events": [...]}` JSON; `field` names a wrong top-level field. '
        "Nothing of the batch was recorded.",
    ),
    ProblemType(
        "visitor-id-required",
        400,
        _BAD_REQUEST,
        "An anonymous caller sent storefront events without `X-Visitor-Id`. Send a bearer "
        "token or the visitor's id.",
    ),
    ProblemType(
        "bad-visitor-id",
        400,
        _BAD_REQUEST,
        "`X-Visitor-Id` is not 16 to 64 characters of `A-Z`, `a-z`, `0-9`, `-` and `_`.",
    ),
    ProblemType(
        "event-batch-too-large",
        413,
        "Content Too Large",
        "The body is larger than any valid batch (`maxBytes`). Send fewer events at a time.",
    ),
    ProblemType(
        "too-many-events",
        422,
        _UNPROCESSABLE,
        "The batch holds more events than allowed (`maxEvents`, `count`). Split it.",
    ),
    ProblemType(
        "invalid-events",
        422,
        _UNPROCESSABLE,
        "One or more events are invalid: `eventIndex` and `field` name the first, `errors` "
        "all of them. Nothing of the batch was recorded; fix them and send it again.",
    ),
    ProblemType(
        "events-rate-limited",
        429,
        _TOO_MANY,
        "The caller sent more events than the limit allows (`limit` per `windowSeconds`). "
        "Send the batch again after `Retry-After` seconds.",
    ),
    ProblemType(
        "events-unavailable",
        503,
        _UNAVAILABLE,
        "The messaging service did not take the batch. Send it again after `Retry-After` seconds.",
    ),
    # --- cart and checkout ----------------------------------------------------------------
    ProblemType(
        "bad-cart-id",
        400,
        _BAD_REQUEST,
        "`X-Cart-Id` is not a cart id this API hands out. Leave it out to start a new cart.",
    ),
    ProblemType(
        "not-in-cart",
        404,
        _NOT_FOUND,
        "The SKU to change or remove is not in the cart.",
    ),
    ProblemType(
        "not-for-sale",
        409,
        _CONFLICT,
        "The product that sells the SKU is not active (a draft, or archived), so it cannot "
        "go into the cart.",
    ),
    ProblemType(
        "quantity-too-large",
        422,
        _UNPROCESSABLE,
        "More than 99 units of one SKU were asked for.",
    ),
    ProblemType(
        "insufficient-stock",
        409,
        _CONFLICT,
        "Fewer units are available than the cart asks for; the detail says how many. Lower "
        "the quantity.",
    ),
    ProblemType(
        "idempotency-key-required",
        400,
        _BAD_REQUEST,
        "A checkout came without an `Idempotency-Key` header of 1 to 255 characters. Send a "
        "fresh key per checkout and reuse it only to retry that checkout.",
    ),
    ProblemType(
        "idempotency-key-reused",
        422,
        _UNPROCESSABLE,
        "The `Idempotency-Key` was used before with a different body. Use a new key for a "
        "different checkout.",
    ),
    ProblemType(
        "checkout-in-progress",
        409,
        _CONFLICT,
        "A checkout with this `Idempotency-Key` is still running. Retry with the same key "
        "after `Retry-After` seconds.",
    ),
    ProblemType(
        "cart-empty",
        422,
        _UNPROCESSABLE,
        "The cart has nothing to check out.",
    ),
    ProblemType(
        "sku-unavailable",
        409,
        _CONFLICT,
        "A cart line's SKU is no longer sold, or its product is not for sale. Remove the "
        "line and check out again.",
    ),
    ProblemType(
        "cannot-price",
        422,
        _UNPROCESSABLE,
        "The order cannot be priced: an unknown shipping method, or lines in more than one "
        "currency; the detail says which.",
    ),
    ProblemType(
        "checkout-declined",
        422,
        _UNPROCESSABLE,
        "The shop's fraud rules decline this checkout (the rules are not named); nothing "
        "was ordered. The shopper may contact the shop.",
    ),
    ProblemType(
        "out-of-stock",
        409,
        _CONFLICT,
        "Not enough stock of a SKU could be reserved at checkout; nothing was ordered. "
        "Lower the quantity and check out again.",
    ),
    ProblemType(
        "unknown-address",
        422,
        _UNPROCESSABLE,
        "`addressId` names no address of the customer. Pick a saved address or send one.",
    ),
    ProblemType(
        "payments-disabled",
        503,
        _UNAVAILABLE,
        "The shop is not taking payments right now. At checkout nothing was ordered, or, "
        "when `orderId` is present, the order is placed and the same `Idempotency-Key` "
        "resumes it later.",
    ),
    ProblemType(
        "payment-unavailable",
        503,
        _UNAVAILABLE,
        "The order (`orderId`) is placed but its payment could not be started. Retry with "
        "the same `Idempotency-Key` after `Retry-After` seconds.",
    ),
    # --- orders ---------------------------------------------------------------------------
    ProblemType(
        "order-not-found",
        404,
        _NOT_FOUND,
        "No such order for this caller (whether it exists for someone else stays unsaid); "
        "also a fulfilment partner's update naming an unknown order.",
    ),
    ProblemType(
        "bad-cursor",
        400,
        _BAD_REQUEST,
        "An order or notification list cursor is not one the API returned. Start again "
        "without a cursor.",
    ),
    ProblemType(
        "bad-status",
        400,
        _BAD_REQUEST,
        "The admin order list's `status` filter is not an order status.",
    ),
    ProblemType(
        "invalid-transition",
        409,
        _CONFLICT,
        "The order cannot go from its status to the one asked for (`from`, `to`), e.g. "
        "cancelling a delivered order or returning an undelivered one.",
    ),
    ProblemType(
        "imported-order",
        409,
        _CONFLICT,
        "The order was imported from another system and cannot be cancelled, returned or "
        "refunded here.",
    ),
    ProblemType(
        "already-shipped",
        409,
        _CONFLICT,
        "Part of the order has shipped, so it cannot be cancelled. Return it once delivered.",
    ),
    ProblemType(
        "return-window-closed",
        409,
        _CONFLICT,
        "The order was delivered longer ago than the return window allows.",
    ),
    ProblemType(
        "unknown-line",
        422,
        _UNPROCESSABLE,
        "A return or refund line, or a fulfilment partner's update, names a SKU that is "
        "not on the order.",
    ),
    ProblemType(
        "refund-exceeds-line",
        409,
        _CONFLICT,
        "More units of a line are to be refunded than can still be refunded; the detail "
        "says how many.",
    ),
    ProblemType(
        "refund-exceeds-captured",
        409,
        _CONFLICT,
        "The refund is larger than what was captured and not yet refunded.",
    ),
    ProblemType(
        "refund-in-progress",
        409,
        _CONFLICT,
        "Another refund of this order is under way. Retry shortly.",
    ),
    ProblemType(
        "not-paid",
        409,
        _CONFLICT,
        "The order has no captured payment to refund.",
    ),
    ProblemType(
        "order-busy",
        409,
        _CONFLICT,
        "The order kept changing while it was being updated; nothing was changed. Send the "
        "request again.",
    ),
    # --- payments and notifications -------------------------------------------------------
    ProblemType(
        "invalid-webhook-signature",
        401,
        "Invalid webhook",
        "A provider's webhook failed verification: the SendGrid or Twilio signature is "
        "missing, stale or wrong (401), or the payment gateway's signature or payload does "
        "not check out (400). Sent to providers, not to clients.",
        other_statuses=(400,),
    ),
    ProblemType(
        "invalid-webhook-body",
        400,
        _BAD_REQUEST,
        "A signed SendGrid event webhook whose body is not a JSON array of events.",
    ),
    ProblemType(
        "notification-not-found",
        404,
        _NOT_FOUND,
        "The caller has no notification with that id.",
    ),
    ProblemType(
        "template-not-found",
        404,
        _NOT_FOUND,
        "A template preview names no template, or a channel the template has no version "
        "for (the detail lists its channels).",
    ),
    # --- ledger, analytics, operations ----------------------------------------------------
    ProblemType(
        "invalid-ledger-query",
        400,
        _BAD_REQUEST,
        "A ledger cursor is not one the API returned, or a period's totals kept changing "
        "while they were read. Start without the cursor, or retry.",
    ),
    ProblemType(
        "unbalanced-entry",
        422,
        _UNPROCESSABLE,
        "A posting rule built a journal entry whose debits and credits differ; nothing was "
        "posted. This is a fault in the posting rules: report it with the correlation id.",
    ),
    ProblemType(
        "invalid-range",
        422,
        _UNPROCESSABLE,
        "An analytics `from`/`to` range cannot be read: outside years 1 to 9999, `from` not "
        "before `to`, or more buckets than one read covers.",
    ),
    ProblemType(
        "dead-letter-not-found",
        404,
        _NOT_FOUND,
        "No dead letter has that id (already resubmitted or purged?). List them again.",
    ),
    ProblemType(
        "unknown-entity",
        404,
        _NOT_FOUND,
        "A dead-letter request names a queue, topic or subscription the messaging topology "
        "does not declare.",
    ),
    ProblemType(
        "ping-not-found",
        404,
        _NOT_FOUND,
        "No diagnostic ping has that id.",
    ),
    # --- endpoints of the embedded local adapters -----------------------------------------
    ProblemType(
        "not-found",
        404,
        _NOT_FOUND,
        "The embedded identity provider's endpoints answer only when the embedded identity "
        "adapter is in use.",
        dev_only=True,
    ),
    ProblemType(
        "invalid-token-request",
        400,
        _BAD_REQUEST,
        "A request to the embedded identity provider's token endpoint is malformed; the "
        "detail says what is wrong.",
        dev_only=True,
    ),
    ProblemType(
        "unknown-test-card",
        400,
        "Unknown test card",
        "The test gateway knows no such test card number; the detail lists them.",
        dev_only=True,
    ),
    ProblemType(
        "invalid-signature",
        403,
        "Invalid signature",
        "A local blob URL is unsigned, malformed, tampered with, expired, or does not "
        "grant this operation. Ask the API for a fresh URL.",
        dev_only=True,
    ),
    ProblemType(
        "content-type-mismatch",
        403,
        "Content type not allowed",
        "An upload to a local blob URL sends another `Content-Type` than the URL was signed for.",
        dev_only=True,
    ),
    ProblemType(
        "missing-blob-type",
        400,
        "Missing blob type",
        "An upload to a local blob URL lacks `x-ms-blob-type: BlockBlob`, which Azure Blob "
        "Storage requires too.",
        dev_only=True,
    ),
    ProblemType(
        "blob-too-large",
        413,
        "Blob too large",
        "An upload to a local blob URL is larger than the local store accepts.",
        dev_only=True,
    ),
    ProblemType(
        "container-not-found",
        404,
        "Container not found",
        "A local blob URL names a container the local store does not have.",
        dev_only=True,
    ),
    ProblemType(
        "blob-name-clash",
        409,
        "Blob name clash",
        "The local store cannot write the blob under that name (it clashes with an existing "
        "blob's path).",
        dev_only=True,
    ),
    ProblemType(
        "blob-not-found",
        404,
        "Blob not found",
        "A signed local blob URL names a blob that does not exist.",
        dev_only=True,
    ),
    ProblemType(
        "simulator-not-running",
        404,
        _NOT_FOUND,
        "No simulator of that partner runs in this process (`cloudcart serve` starts them "
        "unless `--no-partners` or a partner URL is configured).",
        dev_only=True,
    ),
    ProblemType(
        "currency-required",
        400,
        _BAD_REQUEST,
        "The simulated accounting system's books hold several currencies, so its trial "
        "balance needs `currency`.",
        dev_only=True,
    ),
    ProblemType(
        "no-contact",
        404,
        _NOT_FOUND,
        "The simulated CRM has no contact for that customer (never synced, or erased).",
        dev_only=True,
    ),
    ProblemType(
        "unknown-queue",
        404,
        _NOT_FOUND,
        "A message was put on a name that is not a queue of the messaging topology.",
        dev_only=True,
    ),
    ProblemType(
        "too-large",
        413,
        "Content Too Large",
        "A message put on a partner queue is over 256 KiB, the Service Bus limit.",
        dev_only=True,
    ),
)

CATALOGUE: Mapping[str, ProblemType] = MappingProxyType({t.slug: t for t in _TYPES})
"""Every problem type by slug."""

_INTRO = f"""\
# Problem types

<!-- Generated from cloudcart/core/problems.py; do not edit. Regenerate with
     .venv/bin/python -m cloudcart.core.problems > docs/problems.md -->

Every error the API answers is an [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)
problem document, `application/problem+json`:

| Member | Meaning |
| --- | --- |
| `type` | the problem type: [`{PROBLEM_TYPE_BASE}`]({PROBLEM_TYPE_BASE}) followed by one \
of the slugs below, or `about:blank` |
| `title` | a short summary of the type, the same on every problem of that type |
| `status` | the HTTP status code, as on the response |
| `detail` | what went wrong this time, for people to read (never parse it) |
| `instance` | the request path |
| `correlationId` | the request's id, also sent as `x-correlation-id`: quote it when \
reporting a problem |

Some types add members of their own, named below: `errors` (every reason a request was
rejected, each with `location`, `message` and `type`), `retryAfter`, `attemptsLeft`,
`orderId` and others. A 429 or 503 problem carries `Retry-After` when waiting helps.

Clients branch on `type` and `status`, never on `title` or `detail`. Slugs are public
contract: they are never renamed.

A problem of type `about:blank` means no more than its status: an unknown path (404) or
method (405), a body that is not JSON (400), a document that does not exist (404), already
exists (409) or changed since it was read (412), a backing service that is unavailable (503
with `Retry-After`), an unexpected error (500, whose detail only asks to quote the
correlation id), and a few refusals whose `detail` says enough.
"""

_DEV_INTRO = """\
These come only from the `/dev/...` endpoints of the embedded local adapters, which an
Azure deployment never mounts.
"""


def _table(types: list[ProblemType]) -> str:
    rows = ["| Slug | Status | Title | Description |", "| --- | --- | --- | --- |"]
    for t in sorted(types, key=lambda t: t.slug):
        statuses = ", ".join(str(s) for s in sorted(t.statuses))
        rows.append(f"| `{t.slug}` | {statuses} | {t.title} | {t.description} |")
    return "\n".join(rows) + "\n"


def render_markdown() -> str:
    """`docs/problems.md`: the problem document's members and a table of every type."""
    api = [t for t in CATALOGUE.values() if not t.dev_only]
    dev = [t for t in CATALOGUE.values() if t.dev_only]
    return (
        f"{_INTRO}\n## API\n\n{_table(api)}\n## Local development only\n\n"
        f"{_DEV_INTRO}\n{_table(dev)}"
    )


if __name__ == "__main__":
    print(render_markdown(), end="")
