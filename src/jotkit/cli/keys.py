"""``jotkit keys``: generate keys, publish JWKS, thumbprints; rotate and list the server's keys.

Key files are read by ``jotkit.cli.sources.load_key_file``; failures are its ``CliError``.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or unreadable input (a missing or
unreadable file, a file that holds no key, an output file that already exists).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from typing import Any

import click
import orjson

from jotkit.cli.serve import config_option, database_option, operator_errors, server_settings
from jotkit.cli.sources import CliError, CliInputError, dump_json, load_key_file, reporting
from jotkit.codes import (
    ERR_CONFLICT,
    ERR_FILE_EXISTS,
    ERR_FILE_UNWRITABLE,
    ERR_JWKS_DUPLICATE_KID,
    ERR_JWKS_SECRET_KEY,
    ERR_PUBLISH_AHEAD_TOO_SHORT,
)
from jotkit.jose import ALGORITHMS, JoseError, Key, KeySet

__all__ = ["keys"]

# RFC 9278: the URI form of an RFC 7638 SHA-256 thumbprint.
_THUMBPRINT_URI_PREFIX = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:"


def _key_summary(key: Key, path: str) -> dict[str, Any]:
    thumbprint = key.thumbprint()
    return {
        "file": path,
        "kid": key.kid,
        "kty": key.kty,
        "crv": key.crv,
        "alg": key.alg,
        "private": key.is_private,
        "thumbprint": thumbprint,
        "thumbprint_uri": _THUMBPRINT_URI_PREFIX + thumbprint,
    }


def _write_private(path: str, data: bytes, *, force: bool) -> None:
    """Write key material readable by its owner only (0600), never through a looser mode.

    A failed write leaves no partial file, and with ``force`` an existing key is replaced
    whole (a new file renamed over it), so a full disk cannot destroy the old key."""
    if force and os.path.lexists(path) and not os.path.isfile(path):
        raise CliInputError(ERR_FILE_UNWRITABLE, f"cannot write {path}: not a regular file")
    target = None
    try:
        if force:
            folder, name = os.path.split(path)
            descriptor, target = tempfile.mkstemp(prefix=f".{name}.", dir=folder or ".")
        else:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            target = path
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        if force:
            os.replace(target, path)
    except FileExistsError:
        raise CliInputError(
            ERR_FILE_EXISTS,
            f"{path} exists; refusing to overwrite a key (pass --force to replace it)",
        ) from None
    except OSError as exc:
        if target is not None:  # what this call created, never what was there before
            with contextlib.suppress(OSError):
                os.unlink(target)
        raise CliInputError(
            ERR_FILE_UNWRITABLE, f"cannot write {path}: {exc.strerror or type(exc).__name__}"
        ) from None


@click.group()
def keys() -> None:
    """Generate and inspect signing keys; rotate the auth server's keys.

    Key files are PEM (private key, public key or certificate), DER, a JWK or a JWK Set.

    \b
    Exit codes:
      0  success
      1  the operation failed
      2  bad usage or unreadable input (missing file, no key in it, output file exists)
    """


@keys.command()
@click.option(
    "--alg",
    type=click.Choice(sorted(ALGORITHMS)),
    default="ES256",
    show_default=True,
    help="The algorithm the key is for; the key is bound to it.",
)
@click.option(
    "--format",
    "key_format",
    type=click.Choice(["pem", "jwk"]),
    default=None,
    help="pem (PKCS#8; no kid or alg inside) or jwk (keeps kid and alg). "
    "Default: pem, or jwk for HMAC secrets (they have no PEM form).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the private key to this file with mode 0600 (default: stdout).",
)
@click.option(
    "--kid", default=None, help="Key ID (default: an asymmetric key's RFC 7638 thumbprint)."
)
@click.option(
    "--rsa-bits",
    type=click.IntRange(2048, 8192),
    default=2048,
    show_default=True,
    help="Modulus size for RS*/PS* keys.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def generate(
    alg: str, key_format: str | None, out: str | None, kid: str | None, rsa_bits: int, force: bool
) -> None:
    """Generate a private key (or HMAC secret) for ALG.

    \b
    jotkit keys generate --alg ES256 --out signing.pem
    jotkit keys generate --alg HS256 --out secret.jwk     # HMAC: JWK only
    """
    is_secret = ALGORITHMS[alg].kty == "oct"
    if key_format is None:
        key_format = "jwk" if is_secret else "pem"
    if key_format == "pem" and is_secret:
        raise click.BadParameter(
            f"an {alg} secret has no PEM form; use --format jwk", param_hint="'--format'"
        )
    try:
        key = Key.generate(alg, kid=kid, rsa_bits=rsa_bits)
    except JoseError as exc:  # pragma: no cover - every offered alg generates
        raise CliError(exc.code, str(exc)) from None
    if key_format == "pem":
        material = key.to_pem(private=True)
    else:
        material = orjson.dumps(key.to_jwk(private=True), option=orjson.OPT_INDENT_2) + b"\n"
    if out is None:
        click.echo(material, nl=False)
        if sys.stdout.isatty():
            click.echo("note: --out FILE writes the key with mode 0600", err=True)
        return
    _write_private(out, material, force=force)
    kind = "secret" if is_secret else "private key"
    named = f" (kid {key.kid})" if key.kid is not None else ""
    click.echo(f"wrote {alg} {kind}{named} to {out} (mode 0600)", err=True)


@keys.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document: jwks, keys, warnings.")
def jwks(files: tuple[str, ...], as_json: bool) -> None:
    """Print the public JWK Set of the key FILES (PEM, DER, JWK or JWKS; private keys are
    reduced to their public part). PEM/DER keys get their RFC 7638 thumbprint as kid.

    \b
    jotkit keys jwks signing.pem next.pem > jwks.json
    """
    with reporting(as_json):
        published: list[Key] = []
        summaries: list[dict[str, Any]] = []
        warnings: list[dict[str, str]] = []
        seen: dict[str, dict[str, Any]] = {}
        for path in files:
            loaded = load_key_file(path, thumbprint_kids=True)
            warnings += loaded.warnings
            for key in loaded.keys:
                if key.kty == "oct":
                    raise CliInputError(
                        ERR_JWKS_SECRET_KEY,
                        f"{path} holds an HMAC secret: it has no public part and must never "
                        "be published",
                    )
                public = key.public() if key.is_private else key
                jwk = public.to_jwk()
                if key.kid is not None and key.kid in seen:
                    if seen[key.kid] == jwk:
                        warnings.append(
                            {
                                "code": "WARN_DUPLICATE_KEY",
                                "message": f"{path}: key {key.kid} is listed once already",
                            }
                        )
                        continue
                    raise CliInputError(
                        ERR_JWKS_DUPLICATE_KID,
                        f"{path}: two different keys share kid {key.kid!r}",
                    )
                if key.kid is not None:
                    seen[key.kid] = jwk
                published.append(public)
                summaries.append(_key_summary(key, path))
        document = KeySet(published).to_jwks()
        if as_json:
            click.echo(dump_json({"jwks": document, "keys": summaries, "warnings": warnings}))
            return
        for warning in warnings:
            click.echo(f"warning: {warning['code']}: {warning['message']}", err=True)
        click.echo(dump_json(document))


@keys.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document: keys, warnings.")
def thumbprint(file: str, as_json: bool) -> None:
    """Print the RFC 7638 SHA-256 thumbprint of the key in FILE (one line per key of a
    JWK Set, followed by its kid). A private key has the thumbprint of its public part.
    """
    with reporting(as_json):
        loaded = load_key_file(file)
        summaries = [_key_summary(key, file) for key in loaded.keys]
        if as_json:
            click.echo(
                dump_json(
                    {
                        "file": file,
                        "hash": "SHA-256",
                        "keys": [
                            {name: summary[name] for name in ("kid", "kty", "crv", "alg")}
                            | {
                                "thumbprint": summary["thumbprint"],
                                "thumbprint_uri": summary["thumbprint_uri"],
                            }
                            for summary in summaries
                        ],
                        "warnings": loaded.warnings,
                    }
                )
            )
            return
        for warning in loaded.warnings:
            click.echo(f"warning: {warning['code']}: {warning['message']}", err=True)
        if loaded.form != "jwks":
            click.echo(summaries[0]["thumbprint"])
            return
        for summary in summaries:
            click.echo(f"{summary['thumbprint']}  {summary['kid'] or '(no kid)'}")


# A key published longer than a year before it signs is a typo, and time.gmtime needs a
# finite time: an infinite --publish-ahead was stored, then broke `keys list` for good.
_MAX_PUBLISH_AHEAD_SECONDS = 366 * 86400


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):  # FloatRange lets NaN through
        raise click.BadParameter("must be a finite number of seconds")
    return value


@keys.command("rotate")
@config_option
@database_option
@click.option(
    "--publish-ahead",
    type=click.FloatRange(0, _MAX_PUBLISH_AHEAD_SECONDS),
    default=None,
    callback=lambda _ctx, _param, value: _finite(value),
    help="Seconds the new key is published before it signs [key_publish_ahead_seconds]; "
    "at least max(jwks_max_age_seconds, 30) + 5 + clock_skew_seconds unless --emergency.",
)
@click.option(
    "--emergency",
    is_flag=True,
    help="Allow a --publish-ahead below the safe minimum (0 by default): for a compromised "
    "key. Remote verifiers may refuse the new key's tokens until they refetch the JWKS.",
)
def rotate(
    config: str | None, database_url: str | None, publish_ahead: float | None, emergency: bool
) -> None:
    """Create the server's next signing key (published now, signing after --publish-ahead).

    \b
    A key must be published long enough before it signs for every remote verifier to have
    fetched it: a shorter --publish-ahead is refused (ERR_PUBLISH_AHEAD_TOO_SHORT, exit 2)
    unless --emergency says that failing some tokens for a while is the lesser evil.
    """
    from jotkit.server.keyring import Keyring
    from jotkit.server.settings import min_publish_ahead
    from jotkit.store import Store

    settings = server_settings(config, database_url=database_url)
    if emergency and publish_ahead is None:
        publish_ahead = 0
    minimum = min_publish_ahead(settings)
    if publish_ahead is not None and publish_ahead < minimum and not emergency:
        raise CliInputError(
            ERR_PUBLISH_AHEAD_TOO_SHORT,
            f"--publish-ahead {publish_ahead:g} is under the safe minimum of {minimum} s: "
            "remote verifiers (node jose, PyJWKClient, jotkit's guard) refetch a key set at "
            "most every 30 s or after its max-age, so tokens the new key signs sooner would "
            "be refused; pass --emergency to do it anyway (a compromised key)",
        )
    with operator_errors():
        store = Store(settings.database_url)
        try:
            store.migrate()
            keyring = Keyring(settings, store)
            keyring.load(now=time.time())
            record = keyring.rotate(now=time.time(), publish_ahead=publish_ahead)
        finally:
            store.close()
    if record is None:
        raise CliError(
            ERR_CONFLICT,
            "another process stored a new key at the same moment; nothing was added "
            "(see `jotkit keys list`, and run this again if you still want one more)",
        )
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.activates_at))
    click.echo(f"new key {record.kid} ({record.alg}) published; signs from {when}")


@keys.command("list")
@config_option
@database_option
def list_keys(config: str | None, database_url: str | None) -> None:
    """The server's signing keys: kid, algorithm, and when each signs and is removed."""
    from jotkit.store import Store

    settings = server_settings(config, database_url=database_url)
    with operator_errors():
        store = Store(settings.database_url)
        try:
            store.migrate()
            records = store.signing_keys()
        finally:
            store.close()

    def iso(moment: float | None) -> str:
        return "-" if moment is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))

    for record in records:
        click.echo(
            f"{record.kid}  {record.alg}  signs from {iso(record.activates_at)}"
            f"  retired {iso(record.retired_at)}  removed after {iso(record.remove_after)}"
        )
