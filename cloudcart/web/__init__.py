"""The web front end: the storefront at `/` and the management pages at `/admin`.

Pages are rendered on the server with Jinja2 from answers of the public HTTP API, the same
routes the mobile apps call (`client.ApiClient`), so this package is also the reference
client. It never reads a container or calls a domain service directly.
"""
