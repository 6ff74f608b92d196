"""The ``jotkit`` command line: ``serve``, ``users``, ``keys``, ``token`` (and ``demo``).

Exit codes: 0 success, 1 the operation failed (a token did not verify, a user exists...),
2 bad usage (unknown option, unreadable file); every error is one line with its stable code.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import orjson

from jotkit.cli import keys, serve, token, users
from jotkit.cli.sources import EXIT_FAILED, CliError, CliInputError
from jotkit.codes import ERR_MISSING_EXTRA, ERR_OUTPUT, ERR_UNEXPECTED
from jotkit.extras import MissingExtra
from jotkit.jose import ALGORITHMS, JoseError, Key, jwt

__all__ = ["main"]


class _Commands(click.Group):
    """The command group, with the last line of defence of the one-line-error rule: what no
    command turned into its own code (stdout on a full disk, stdin closed, bytes that are not
    text) still ends as one ``error: CODE: message`` line, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except MissingExtra as exc:  # e.g. `jotkit serve` with only the core installed
            raise CliInputError(ERR_MISSING_EXTRA, str(exc)) from None
        except BrokenPipeError:  # the reader went away (`| head`): nothing left to tell it
            sys.stderr.close()
            raise SystemExit(EXIT_FAILED) from None
        except Exception as exc:
            code = ERR_OUTPUT if isinstance(exc, OSError) else ERR_UNEXPECTED
            raise CliError(code, f"{type(exc).__name__}: {exc}") from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jotkit")
def main() -> None:
    """jotkit: stateless token authentication with JSON Web Tokens."""


@main.command()
@click.option("--alg", default="ES256", show_default=True, type=click.Choice(sorted(ALGORITHMS)))
def demo(alg: str) -> None:
    """Generate a key, sign an access-token-shaped JWT, verify it, and show a refusal."""
    key = Key.generate(alg)
    now = int(time.time())
    claims = {"iss": "https://auth.example", "sub": "user-1", "aud": "api", "iat": now}
    signed = jwt.sign({**claims, "exp": now + 900}, key, header={"typ": "at+jwt"})
    verifier_key = key if key.kty == "oct" else key.public()
    click.echo(f"key:    {key!r}")
    click.echo(f"token:  {signed}")
    verified = jwt.verify(
        signed, verifier_key, issuer="https://auth.example", audience="api", typ="at+jwt"
    )
    click.echo("claims: " + orjson.dumps(verified).decode())
    try:
        jwt.verify(signed, verifier_key, issuer="https://auth.example", audience="other")
    except JoseError as exc:
        click.echo(f"wrong audience refused: {exc.code}: {exc}")


main.add_command(serve.serve)
main.add_command(users.users)
main.add_command(keys.keys)
main.add_command(token.token)
