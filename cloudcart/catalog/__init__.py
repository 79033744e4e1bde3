"""The catalog: products with variants, the category tree, stock levels, and their API.

`cloudcart.catalog.routes` holds `admin_router` and `public_router`; business logic is in
`cloudcart.catalog.service.CatalogService`, models in `cloudcart.catalog.models`.
"""
