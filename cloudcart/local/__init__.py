"""The embedded runtime: the `cloudcart` CLI, the local trigger host and demo data.

Only the CLI enters it (an import-linter contract): the app and the domains never import
it, so nothing here can become part of what Azure runs by accident.
"""
