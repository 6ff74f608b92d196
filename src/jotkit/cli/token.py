"""``jotkit token``: decode, verify and sign tokens from the terminal."""

from __future__ import annotations

import click


@click.group()
def token() -> None:
    """Inspect, verify and sign JWTs (decode shows what is inside: signed, not encrypted)."""
