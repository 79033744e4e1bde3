"""The storefront's catalog pages: home, search and product, and signing out."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web import events
from cloudcart.web.client import ApiClient
from cloudcart.web.forms import segment
from cloudcart.web.pages import notices, open_form, open_page, web_router
from cloudcart.web.search import search_catalog
from cloudcart.web.security import CART_COOKIE, SESSION_COOKIE, clear_cookie

router = web_router()

SHELF_SIZE = 8
PAGE_SIZE = 24
_FACETS = (("category", "Category"), ("brand", "Brand"), ("storage", "Storage"), ("os", "OS"))


def _flatten(categories: list[dict[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """The category tree as a list with depths, parents first."""
    flat: list[dict[str, Any]] = []
    for category in categories:
        flat.append({"id": category["id"], "name": category["name"], "depth": depth})
        flat.extend(_flatten(category.get("children") or [], depth + 1))
    return flat


async def _products(api: ApiClient, ids: list[str]) -> list[dict[str, Any]]:
    """Products by id, in that order, leaving out any no longer on sale."""
    found = await api.each("/api/catalog/products/{}", ids)
    return [found[pid] for pid in ids if pid in found]


async def _also_bought(api: ApiClient, product_path: str) -> list[dict[str, Any]]:
    """What is bought with the product, as products on sale."""
    also = await api.optional(f"{product_path}/also-bought", {}, limit=SHELF_SIZE)
    return await _products(api, [item["productId"] for item in also.get("items", [])])


async def recommendation_shelf(api: ApiClient, kind: str) -> list[dict[str, Any]]:
    """The signed-in customer's `for-you` or `order-again` products."""
    answer = await api.optional("/api/me/recommendations", {}, kind=kind, limit=SHELF_SIZE)
    return await _products(api, [item["productId"] for item in answer.get("items", [])])


_HOME_DONE = {
    "deleted": "Your account and its data have been deleted.",
    "signed-out": "You are signed out.",
}


@router.get("/")
async def home(
    request: Request, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    """Categories, what is new, and for a signed-in customer their recommendation shelves."""
    page = await open_page(request)
    api = page.api
    calls = [
        api.get("/api/catalog/categories"),
        api.get("/api/catalog/products", limit=SHELF_SIZE),
    ]
    if page.signed_in:
        calls += [recommendation_shelf(api, "for-you"), recommendation_shelf(api, "order-again")]
    answers = await api.gather(*calls)
    categories = answers[0]["items"]
    shelves: list[tuple[str, Any, str | None]] = [("New in", answers[1]["items"], None)]
    if page.signed_in:
        shelves = [
            ("Picked for you", answers[2], "for-you"),
            ("Order again", answers[3], "order-again"),
            *shelves,
        ]
    return page.render(
        "home.html",
        categories=categories,
        shelves=[s for s in shelves if s[1]],
        notices=notices(_HOME_DONE, done),
    )


@router.get("/search")
async def search(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str | None, Query(max_length=100)] = None,
    brand: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[str, Query(max_length=20)] = "relevance",
    in_stock: Annotated[str | None, Query(alias="inStock", max_length=5)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Search results with facets; an empty query lists the catalog (or a category)."""
    page = await open_page(request)
    api = page.api
    (result, error), tree = await api.gather(
        search_catalog(
            api,
            q,
            category=category,
            brand=brand,
            sort=sort,
            inStock="true" if in_stock == "true" else None,
            cursor=cursor,
            limit=PAGE_SIZE,
        ),
        api.get("/api/catalog/categories"),
    )
    facets = [(key, label, result["facets"].get(key, [])) for key, label in _FACETS]
    response = page.render(
        "search.html",
        status=400 if error else 200,
        q=q,
        error=error,
        result=result,
        facets=[f for f in facets if f[2]],
        names={c["id"]: c["name"] for c in _flatten(tree["items"])},
        selected={"category": category, "brand": brand, "inStock": in_stock},
        sort=sort,
    )
    if q.strip() and not cursor and not error:
        search_event = events.event("search", query=q.strip()[:200], resultsCount=result["total"])
        return events.record(api, response, search_event)
    return response


_PRODUCT_DONE = {"notify": "We will tell you when it is back in stock."}


@router.get("/products/{product_id}")
async def product(
    request: Request,
    product_id: str,
    sku: Annotated[str | None, Query(max_length=100)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """A product: media, variants with stock, and what is bought with it. `from` names the
    shelf a recommendation was clicked on (recorded as `recommendation_clicked`)."""
    path = f"/api/catalog/products/{segment(product_id)}"
    page = await open_page(request)
    api = page.api
    item, also_bought = await api.gather(api.get(path), _also_bought(api, path))
    variants = item.get("variants") or []
    chosen = next((v for v in variants if v["sku"] == sku), None) or next(
        (v for v in variants if v.get("inStock")), variants[0] if variants else None
    )
    response = page.render(
        "product.html",
        product=item,
        chosen=chosen,
        also_bought=also_bought,
        notices=notices(_PRODUCT_DONE, done),
    )
    chosen_sku = chosen["sku"] if chosen else None
    recorded = [events.event("product_viewed", productId=item["productId"], sku=chosen_sku)]
    if from_:
        recorded.append(
            events.event("recommendation_clicked", productId=item["productId"], sku=chosen_sku)
        )
    return events.record(api, response, *recorded)


@router.post("/products/{product_id}/notify-me")
async def notify_me(request: Request, product_id: str) -> Response:
    """Subscribe the signed-in customer to a SKU's return to stock."""
    page, fields = await open_form(request)
    pid = segment(product_id)
    page.require_sign_in(f"/products/{pid}")
    sku = fields.get("sku", "")
    await page.api.post(f"/api/catalog/products/{pid}/notify-me", {"sku": sku})
    return page.redirect(f"/products/{pid}?{urlencode({'sku': sku, 'done': 'notify'})}")


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    """End the session at the API, then at the identity provider if it has a sign-out."""
    page, _ = await open_form(request)
    target = "/"
    if page.signed_in:
        answer = await page.api.post("/auth/logout")
        target = answer.get("endSessionUrl") or "/"
    response = page.redirect(target)
    clear_cookie(response, page.settings, SESSION_COOKIE)
    clear_cookie(response, page.settings, CART_COOKIE)
    return response
