"""``jotkit keys``: generate keys, publish JWKS, thumbprints, and rotate the server's keys."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """Generate and inspect signing keys; rotate the auth server's keys."""
