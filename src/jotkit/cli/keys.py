"""``jotkit keys``: generate keys, publish JWKS, thumbprints, and rotate the server's keys.

Also the command line's shared plumbing for key files and errors (``token`` uses it too):
``load_key_file`` reads PEM, DER, a JWK or a JWK Set; ``CliError`` is the one-line
``error: CODE: message`` every command ends with when it cannot do what was asked.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or unreadable input (a missing or
unreadable file, a file that holds no key, an output file that already exists).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import click
import orjson

from jotkit.jose import ALGORITHMS, InvalidKey, JoseError, Key, KeySet

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "CliError",
    "CliInputError",
    "LoadedKeys",
    "dump_json",
    "keys",
    "load_key_file",
    "read_input",
    "reporting",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
# Bigger than this is not a key file or a JWK Set (an 8192-bit RSA private JWK is ~7 KiB).
MAX_KEY_FILE_BYTES = 1 << 20
# RFC 9278: the URI form of an RFC 7638 SHA-256 thumbprint.
_THUMBPRINT_URI_PREFIX = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:"


class CliError(click.ClickException):
    """The operation failed (exit 1): one line ``error: CODE: message`` on stderr."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def show(self, file: Any = None) -> None:
        """Print ``error: CODE: message`` to stderr (click calls this before exiting)."""
        click.echo(f"error: {self.code}: {self.format_message()}", err=True)

    def to_json(self) -> dict[str, Any]:
        """The error as the ``error`` member of a ``--json`` document."""
        return {"code": self.code, "message": self.format_message()}


class CliInputError(CliError):
    """Bad usage or unreadable input (exit 2): a missing file, a file that holds no key, an
    output file that exists. Like click's own usage errors, but one line with a code."""

    exit_code = EXIT_USAGE


def dump_json(document: Mapping[str, Any]) -> str:
    """One indented JSON document for ``--json`` output.

    The stdlib encoder, not orjson: headers may hold integers past 64 bits, and
    ``ensure_ascii`` keeps control characters from a token out of the reader's terminal.
    """
    return json.dumps(document, indent=2, ensure_ascii=True)


@contextlib.contextmanager
def reporting(as_json: bool, **context: Any) -> Iterator[None]:
    """With ``--json``, a ``CliError`` also becomes a JSON document on stdout (``context``
    members first, then ``error``), so a script always has one document to parse."""
    try:
        yield
    except CliError as exc:
        if as_json:
            click.echo(dump_json({**context, "error": exc.to_json()}))
        raise


def read_input(path: str, *, what: str, max_bytes: int = MAX_KEY_FILE_BYTES) -> bytes:
    """The bytes of ``path`` (``-`` = stdin); a missing, unreadable or huge file is exit 2."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            with open(path, "rb") as stream:
                data = stream.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliInputError("ERR_FILE_UNREADABLE", f"cannot read {what} {path}: {reason}") from None
    if len(data) > max_bytes:
        raise CliInputError(
            "ERR_FILE_UNREADABLE", f"{what} {path} is over {max_bytes} bytes: not a {what}"
        )
    return data


@dataclass
class LoadedKeys:
    """The keys of one file and what the file was: ``pem``, ``der``, ``jwk`` or ``jwks``."""

    path: str
    form: str
    keys: list[Key]
    warnings: list[dict[str, str]] = field(default_factory=list)


def load_key_file(path: str, *, thumbprint_kids: bool = False) -> LoadedKeys:
    """Read a key file: PEM (private, public or certificate), DER, a JWK or a JWK Set.

    PEM and DER carry no ``kid``; with ``thumbprint_kids`` such keys get their RFC 7638
    thumbprint as ``kid`` (what ``keys generate`` gives them), so a token signed with the PEM
    names the key that ``keys jwks`` publishes for it. Anything unusable is exit 2.
    """
    data = read_input(path, what="key file")
    try:
        if b"-----BEGIN" in data:
            loaded = LoadedKeys(path, "pem", [Key.from_pem(data)])
        elif data.lstrip().startswith(b"{"):
            loaded = _load_json_keys(path, data)
        else:
            try:
                loaded = LoadedKeys(path, "der", [Key.from_der(data)])
            except InvalidKey:
                raise InvalidKey("not a PEM, DER, JWK or JWK Set key file") from None
    except JoseError as exc:
        raise CliInputError(exc.code, f"{path}: {exc}") from None
    if thumbprint_kids and loaded.form in ("pem", "der"):
        for key in loaded.keys:
            key.kid = key.thumbprint()
    return loaded


def _load_json_keys(path: str, data: bytes) -> LoadedKeys:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidKey("not valid JSON") from None
    if isinstance(document, dict) and "keys" in document:
        key_set = KeySet.from_jwks(document)
        loaded = LoadedKeys(path, "jwks", list(key_set))
        skipped = len(document["keys"]) - len(key_set)
        if skipped:
            # RFC 7517 §5: members of a set that cannot be used are ignored, not fatal.
            loaded.warnings.append(
                {
                    "code": "WARN_JWKS_KEYS_SKIPPED",
                    "message": f"{path}: {skipped} key(s) of unknown type or with bad members "
                    "skipped",
                }
            )
        if not loaded.keys:
            raise InvalidKey("the JWK Set holds no usable key")
        return loaded
    if isinstance(document, dict) and "kty" in document:
        return LoadedKeys(path, "jwk", [Key.from_jwk(document)])
    raise InvalidKey('JSON key files are a JWK (with "kty") or a JWK Set (with "keys")')


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
    """Write key material readable by its owner only (0600), never through a looser mode."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CliInputError(
            "ERR_FILE_EXISTS",
            f"{path} exists; refusing to overwrite a key (pass --force to replace it)",
        ) from None
    except OSError as exc:
        raise CliInputError(
            "ERR_FILE_UNWRITABLE", f"cannot write {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    with os.fdopen(descriptor, "wb") as stream:
        # An existing file keeps its old mode through O_TRUNC; tighten it before writing.
        os.fchmod(descriptor, 0o600)
        stream.write(data)


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
@click.option("--kid", default=None, help="Key ID (default: the RFC 7638 thumbprint).")
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
                        "ERR_JWKS_SECRET_KEY",
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
                        "ERR_JWKS_DUPLICATE_KID",
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


# `jotkit keys rotate` (the auth server's key rotation) joins this group with the server work;
# it can reuse load_key_file and CliError above.
