"""The storefront's catalog pages: home, search and product, and signing out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web import events
from cloudcart.web.client import ApiClient, ApiError
from cloudcart.web.pages import open_form, open_page, web_router
from cloudcart.web.security import CART_COOKIE, clear_cookie

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
    found = await api.gather(*(api.optional(f"/api/catalog/products/{pid}") for pid in ids))
    return [product for product in found if product]


async def recommendation_shelf(api: ApiClient, kind: str) -> list[dict[str, Any]]:
    """The signed-in customer's `for-you` or `order-again` products."""
    answer = await api.optional("/api/me/recommendations", {}, kind=kind, limit=SHELF_SIZE)
    return await _products(api, [item["productId"] for item in answer.get("items", [])])


@router.get("/")
async def home(request: Request) -> Response:
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
    shelves = [("New in", answers[1]["items"])]
    if page.signed_in:
        shelves = [("Picked for you", answers[2]), ("Order again", answers[3]), *shelves]
    return page.render(
        "home.html",
        categories=categories,
        shelves=[(title, items) for title, items in shelves if items],
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
    params = {
        "q": q.strip(),
        "category": category,
        "brand": brand,
        "sort": sort,
        "inStock": "true" if in_stock == "true" else None,
        "cursor": cursor,
        "limit": PAGE_SIZE,
    }
    try:
        result, tree = await page.api.gather(
            page.api.get("/api/search", **params), page.api.get("/api/catalog/categories")
        )
    except ApiError as exc:
        if exc.status != 400:
            raise
        return page.render(
            "search.html",
            status=400,
            q=q,
            error=exc.message,
            result={"items": [], "total": 0, "facets": {}},
            facets=[],
            names={},
            selected={},
            sort=sort,
        )
    names = {c["id"]: c["name"] for c in _flatten(tree["items"])}
    facets = [(key, label, result["facets"].get(key, [])) for key, label in _FACETS]
    response = page.render(
        "search.html",
        q=q,
        error=None,
        result=result,
        facets=[f for f in facets if f[2]],
        names=names,
        selected={"category": category, "brand": brand, "inStock": in_stock},
        sort=sort,
    )
    if q.strip() and not cursor:
        search_event = events.event("search", query=q.strip()[:200], resultsCount=result["total"])
        return events.record(page.api, response, search_event)
    return response


@router.get("/products/{product_id}")
async def product(request: Request, product_id: str, sku: str | None = None) -> Response:
    """A product: media, variants with stock, and what is bought with it."""
    page = await open_page(request)
    api = page.api
    item, also = await api.gather(
        api.get(f"/api/catalog/products/{product_id}"),
        api.optional(f"/api/catalog/products/{product_id}/also-bought", {}, limit=SHELF_SIZE),
    )
    variants = item.get("variants") or []
    chosen = next((v for v in variants if v["sku"] == sku), None) or next(
        (v for v in variants if v.get("inStock")), variants[0] if variants else None
    )
    also_bought = await _products(api, [i["productId"] for i in also.get("items", [])])
    response = page.render("product.html", product=item, chosen=chosen, also_bought=also_bought)
    viewed = events.event(
        "product_viewed", productId=item["productId"], sku=chosen["sku"] if chosen else None
    )
    return events.record(api, response, viewed)


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    """End the session at the API, then at the identity provider if it has a sign-out."""
    page, _ = await open_form(request)
    target = "/"
    if page.signed_in:
        answer = await page.api.post("/auth/logout")
        target = answer.get("endSessionUrl") or "/"
    response = page.redirect(target)
    clear_cookie(response, page.settings, "cloudcart_session")
    clear_cookie(response, page.settings, CART_COOKIE)
    return response
