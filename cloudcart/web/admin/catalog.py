"""Products and stock: the product list with the stock of each SKU, one product in any
status, and the form that sets a SKU's stock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web.admin.common import AdminPage, open_admin, open_admin_form
from cloudcart.web.client import ApiClient, ApiError
from cloudcart.web.forms import segment, whole_number
from cloudcart.web.pages import notices, web_router
from cloudcart.web.search import search_catalog

router = web_router()

PRODUCTS_PAGE = 20
MAX_STOCK = 10**9
PRODUCT_DONE = {"stock": "The stock was updated."}
STALE_STOCK = (
    "The stock of {sku} changed after this page was opened, so it was not saved. Reload the "
    "page to see the current figures, then try again."
)


async def _levels(api: ApiClient, skus: Sequence[str]) -> dict[str, Any]:
    """Stock per SKU (a SKU the API cannot answer for is left out: the page shows it as
    unknown)."""
    return await api.each("/api/admin/inventory/{}", skus)


@router.get("/admin/products")
async def products(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """Products with their variants and the stock of each SKU.

    The admin API reads one product at a time and has no list route, so the list comes
    from the public search (active products only; a draft or archived product is opened by
    its id), and each product's variants from the admin product route.
    """
    admin = await open_admin(request)
    api = admin.api
    result, error = await search_catalog(api, q, cursor=cursor, limit=PRODUCTS_PAGE)
    ids = [item["productId"] for item in result["items"]]
    details = await api.each("/api/admin/products/{}", ids)
    skus = [v["sku"] for product in details.values() for v in product.get("variants") or []]
    return admin.render(
        "admin/products.html",
        status=400 if error else 200,
        error=error,
        q=q,
        result=result,
        details=details,
        levels=await _levels(api, skus),
        paged=bool(cursor),
    )


async def _product_page(
    admin: AdminPage,
    product_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    error_sku: str | None = None,
    done: str | None = None,
) -> Response:
    product = await admin.api.get(f"/api/admin/products/{segment(product_id)}")
    skus = [v["sku"] for v in product.get("variants") or []]
    return admin.render(
        "admin/product.html",
        status=status,
        product=product,
        levels=await _levels(admin.api, skus),
        error=error,
        error_sku=error_sku,
        notices=notices(PRODUCT_DONE, done),
    )


@router.get("/admin/products/{product_id}")
async def product_detail(
    request: Request, product_id: str, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """A product in any status, its variants and a stock form per SKU."""
    admin = await open_admin(request)
    return await _product_page(admin, product_id, done=done)


@router.post("/admin/inventory/{sku}")
async def set_stock(request: Request, sku: str) -> Response:
    """Set a SKU's units available (or on hand) unless they changed since the form was
    drawn.

    The form carries the stock's `updatedAt` as the page showed it. The stock is read again
    first: a different `updatedAt` means someone (an order, a warehouse sync, another
    admin) moved it meanwhile, and the page asks to reload instead of overwriting.
    """
    admin, fields = await open_admin_form(request)
    path = f"/api/admin/inventory/{segment(sku)}"
    level = await admin.api.get(path)
    product_id = str(level["productId"])
    field = fields.get("field", "available")
    if field not in ("available", "onHand"):
        field = "available"
    value = whole_number(fields.get("value"), 0, MAX_STOCK)
    if value is None:
        status, error = 422, f"Enter the units of {sku} as a whole number from 0."
    elif fields.get("seen", "") != str(level.get("updatedAt") or ""):
        status, error = 412, STALE_STOCK.format(sku=sku)
    else:
        try:
            await admin.api.send("PUT", path, json={field: value})
        except ApiError as exc:
            if exc.status not in (400, 409, 412, 422):
                raise
            status = exc.status
            error = STALE_STOCK.format(sku=sku) if exc.status == 412 else exc.message
        else:
            after = f"/admin/products/{segment(product_id)}?done=stock#stock-{segment(sku)}"
            return admin.redirect(after)
    return await _product_page(admin, product_id, status=status, error=error, error_sku=sku)
