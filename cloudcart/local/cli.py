"""The `cloudcart` command line (placeholder until the CLI lands)."""


def main() -> None:
    """Entry point of the `cloudcart` console script."""
    raise SystemExit("not yet")
