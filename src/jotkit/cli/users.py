"""``jotkit users``: manage the auth server's accounts directly in its store."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from jotkit.accounts import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARACTERS, is_email
from jotkit.cli.serve import config_option, database_option, operator_errors, server_settings
from jotkit.cli.sources import CliError
from jotkit.codes import ERR_CONFLICT, ERR_NOT_FOUND, ERR_PASSWORD_TOO_LONG, ERR_PASSWORD_TOO_SHORT

__all__ = ["users"]


@click.group()
def users() -> None:
    """Add, list, disable and re-password users (in the store the server uses)."""


@contextmanager
def _opened(config: str | None, database_url: str | None) -> Iterator[tuple[Any, Any]]:
    from jotkit.server.passwords import Passwords
    from jotkit.store import Store

    settings = server_settings(config, database_url=database_url)
    with operator_errors():
        store = Store(settings.database_url)
        try:
            store.migrate()
            yield store, Passwords(settings)
        finally:
            store.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_CHARACTERS:
        raise CliError(
            ERR_PASSWORD_TOO_SHORT,
            f"password must be at least {MIN_PASSWORD_CHARACTERS} characters",
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise CliError(
            ERR_PASSWORD_TOO_LONG, f"password must be at most {MAX_PASSWORD_BYTES} bytes"
        )
    return password


password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@users.command("add")
@click.argument("email")
@password_stdin
@click.option("--scope", default="", help="Space-separated scopes granted to the user.")
@config_option
@database_option
def add(
    email: str, password_stdin: bool, scope: str, config: str | None, database_url: str | None
) -> None:
    """Create a user; exit 1 if the email is taken."""
    from jotkit.store import Conflict

    if not is_email(email):
        raise click.BadParameter("not an email address", param_hint="EMAIL")
    password = _read_password(password_stdin)
    with _opened(config, database_url) as (store, passwords):
        try:
            user = store.add_user(email, passwords.hash(password), now=time.time(), scope=scope)
        except Conflict:
            raise CliError(ERR_CONFLICT, f"a user {email.lower()} already exists") from None
    click.echo(f"created {user.email} (id {user.id})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@config_option
@database_option
def list_users(as_json: bool, config: str | None, database_url: str | None) -> None:
    """Every user: id, email, scope, disabled."""
    import orjson

    with _opened(config, database_url) as (store, _):
        found = store.list_users()
    if as_json:
        click.echo(
            orjson.dumps(
                [
                    {
                        "id": u.id,
                        "email": u.email,
                        "scope": u.scope,
                        "disabled": u.disabled,
                        "created_at": int(u.created_at),
                    }
                    for u in found
                ]
            ).decode()
        )
        return
    for user in found:
        state = "disabled" if user.disabled else "active"
        click.echo(f"{user.id}  {user.email}  {state}  scope={user.scope!r}")


def _change(email: str, config: str | None, database_url: str | None, **changes: Any) -> None:
    with _opened(config, database_url) as (store, _):
        if not store.update_user(email, **changes):
            raise CliError(ERR_NOT_FOUND, f"no user {email.lower()}")


@users.command("disable")
@click.argument("email")
@config_option
@database_option
def disable(email: str, config: str | None, database_url: str | None) -> None:
    """Refuse the user's logins and sign them out everywhere (their tokens die within ~1 s)."""
    settings = server_settings(config, database_url=database_url)
    with _opened(config, database_url) as (store, _):
        user = store.user_by_email(email)
        if user is None or not store.update_user(email, disabled=True):
            raise CliError(ERR_NOT_FOUND, f"no user {email.lower()}")
        now = time.time()
        # Durable revocation entries: running servers pick them up from the store.
        store.revoke_user(
            user.id,
            reason="disabled",
            now=now,
            forget_after=now + settings.access_ttl_seconds + settings.clock_skew_seconds,
        )
    click.echo(f"disabled {email.lower()} and revoked every session")


@users.command("enable")
@click.argument("email")
@config_option
@database_option
def enable(email: str, config: str | None, database_url: str | None) -> None:
    """Allow a disabled user to log in again."""
    _change(email, config, database_url, disabled=False)
    click.echo(f"enabled {email.lower()}")


@users.command("set-password")
@click.argument("email")
@password_stdin
@config_option
@database_option
def set_password(
    email: str, password_stdin: bool, config: str | None, database_url: str | None
) -> None:
    """Replace the user's password (argon2id)."""
    password = _read_password(password_stdin)
    with _opened(config, database_url) as (store, passwords):
        if not store.update_user(email, password_hash=passwords.hash(password)):
            raise CliError(ERR_NOT_FOUND, f"no user {email.lower()}")
    click.echo(f"password changed for {email.lower()}")
