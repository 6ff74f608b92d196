"""Where the command line's inputs come from, and how it reports that they are unusable.

Tokens (an argument or stdin), key files, HMAC secrets (a file or an environment variable) and
JWK Sets fetched over HTTP(S), plus the plumbing every command shares: ``load_key_file`` reads
PEM, DER, a JWK or a JWK Set; ``CliError`` is the one-line ``error: CODE: message`` every
command ends with when it cannot do what was asked; ``reporting`` turns it into a JSON document
under ``--json``.

Exit codes: 0 success, 1 the operation failed (``CliError``), 2 bad usage or unreadable input
(``CliInputError``: a missing or unreadable file, a file that holds no key, an output file that
already exists).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import click
import orjson

from jotkit.codes import (
    ERR_FILE_UNREADABLE,
    ERR_JWKS_FETCH,
    ERR_JWKS_INVALID,
    ERR_KEY_AMBIGUOUS,
    ERR_KEY_NOT_PRIVATE,
    ERR_NO_TOKEN,
    ERR_SECRET_ENV_UNSET,
)
from jotkit.jose import InvalidKey, JoseError, Key, KeySet
from jotkit.jose.b64 import b64encode

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "MAX_KEY_FILE_BYTES",
    "CliError",
    "CliInputError",
    "LoadedKeys",
    "check_jwks_url",
    "dump_json",
    "fetch_jwks",
    "load_key_file",
    "one_source",
    "read_input",
    "read_token",
    "reporting",
    "secret_key",
    "signing_key",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
# Bigger than this is not a key file or a JWK Set (an 8192-bit RSA private JWK is ~7 KiB).
MAX_KEY_FILE_BYTES = 1 << 20
_JWKS_MAX_REDIRECTS = 3


class CliError(click.ClickException):
    """The operation failed (exit 1): one line ``error: CODE: message`` on stderr."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def show(self, file: Any = None) -> None:
        """Print ``error: CODE: message`` to stderr (click calls this before exiting)."""
        # A file name or URL given with a newline must not split the one line.
        message = self.format_message().replace("\r", "\\r").replace("\n", "\\n")
        click.echo(f"error: {self.code}: {message}", err=True)

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
        raise CliInputError(ERR_FILE_UNREADABLE, f"cannot read {what} {path}: {reason}") from None
    if len(data) > max_bytes:
        raise CliInputError(
            ERR_FILE_UNREADABLE, f"{what} {path} is over {max_bytes} bytes: not a {what}"
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


def read_token(argument: str | None, *, max_bytes: int) -> str:
    """The token from the argument or stdin (``-``), without whitespace or a Bearer prefix."""
    if argument is None or argument == "-":
        if argument is None and sys.stdin.isatty():
            raise click.UsageError("give a TOKEN, or - and pipe the token on stdin")
        raw = read_input("-", what="token", max_bytes=max_bytes + 64)
    else:
        raw = argument.encode("utf-8", "replace")
    raw = raw.strip()
    if raw[:7].lower() == b"bearer ":
        raw = raw[7:].strip()
    if not raw:
        raise CliInputError(ERR_NO_TOKEN, "no token given")
    # Not ASCII is not a token, but jwt.peek / jwt.verify say so (exit 1, ERR_JWS_MALFORMED).
    return raw.decode("utf-8", "replace")


def secret_key(secret_file: str | None, secret_env: str | None, alg: str | None) -> Key:
    if secret_file is not None:
        secret = read_input(secret_file, what="secret file")
        # A file written by `echo` ends in a newline that is not part of the secret.
        secret = secret.removesuffix(b"\n").removesuffix(b"\r")
    else:
        value = os.environ.get(secret_env or "")
        if not value:
            raise CliInputError(
                ERR_SECRET_ENV_UNSET, f"environment variable {secret_env} is not set or empty"
            )
        secret = value.encode()
    try:
        if alg is not None:
            return Key.from_secret(secret, alg=alg)
        # Unbound: every HS* the secret is long enough for (the --alg list narrows it).
        return Key.from_jwk({"kty": "oct", "k": b64encode(secret)})
    except JoseError as exc:
        raise CliInputError(exc.code, f"HMAC secret: {exc}") from None


def one_source(**sources: Any) -> None:
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        flags = ", ".join("--" + name.replace("_", "-") for name in sources)
        raise click.UsageError(f"give exactly one of {flags}")


def fetch_jwks(url: str, timeout: float) -> KeySet:
    """GET a JWK Set with httpx; every failure is ERR_JWKS_FETCH or ERR_JWKS_INVALID (exit 1)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with the guard and server extras
        raise CliInputError(
            ERR_JWKS_FETCH, "--jwks needs httpx: pip install 'jotkit[guard]'"
        ) from None
    from jotkit.guard.errors import JWKSUnavailable
    from jotkit.guard.jwks import download

    try:
        # Redirects are followed here, not by httpx, which would read each 3xx body itself,
        # outside download()'s size cap and deadline. timeout bounds each read; each answer
        # gets twice that, as in the guard.
        with httpx.Client(timeout=timeout) as client:
            for _ in range(_JWKS_MAX_REDIRECTS + 1):
                response, body = download(client, url, {"Accept": "application/json"}, 2 * timeout)
                location = response.headers.get("Location")
                if not response.is_redirect or location is None:
                    break
                target = response.url.join(location)
                if response.url.scheme == "https" and target.scheme != "https":
                    raise CliError(ERR_JWKS_FETCH, f"{url} redirects an https fetch to {target}")
                url = str(target)
            else:
                raise CliError(ERR_JWKS_FETCH, f"over {_JWKS_MAX_REDIRECTS} redirects")
    except JWKSUnavailable as exc:
        raise CliError(ERR_JWKS_FETCH, str(exc)) from None
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        # InvalidURL and UnicodeError (a host name IDNA cannot encode) are no HTTPError.
        raise CliError(ERR_JWKS_FETCH, f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise CliError(ERR_JWKS_FETCH, f"GET {url} answered HTTP {response.status_code}")
    try:
        key_set = KeySet.from_jwks(body, public_only=True)
    except JoseError as exc:
        raise CliError(ERR_JWKS_INVALID, f"{url} is not a JWK Set: {exc}") from None
    if not len(key_set):
        raise CliError(ERR_JWKS_INVALID, f"the JWK Set at {url} holds no usable key")
    return key_set


def check_jwks_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise click.BadParameter("is not a valid URL", ctx, param) from None
        if not value.isprintable():  # a newline would also split the one-line error
            raise click.BadParameter("is not a valid URL", ctx, param)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise click.BadParameter("must be an http:// or https:// URL", ctx, param)
    return value


def signing_key(path: str, kid: str | None) -> Key:
    loaded = load_key_file(path, thumbprint_kids=True)
    candidates = [key for key in loaded.keys if key.is_private]
    if loaded.form == "jwks" and kid is not None:
        candidates = [key for key in candidates if key.kid == kid]
    if not candidates:
        which = f" with kid {kid!r}" if loaded.form == "jwks" and kid is not None else ""
        raise CliInputError(
            ERR_KEY_NOT_PRIVATE,
            f"{path} holds no private key{which}; signing needs the private key",
        )
    if len(candidates) > 1:
        raise CliInputError(
            ERR_KEY_AMBIGUOUS, f"{path} holds {len(candidates)} private keys; pick one with --kid"
        )
    key = candidates[0]
    if kid is not None:
        key.kid = kid
    return key
