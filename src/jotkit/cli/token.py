"""``jotkit token``: decode, verify and sign tokens from the terminal.

``decode`` shows what a token says (UNVERIFIED, with warnings), ``verify`` gives the verdict
of ``jwt.verify`` under a policy from the options, ``sign`` mints test tokens. Exit codes:
0 success, 1 the operation failed (a token that does not verify or does not decode, a signing
refusal, an unreachable JWKS), 2 bad usage or unreadable input.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import click
import orjson

from jotkit.cli.display import (
    colour_enabled,
    describe_times,
    detect_warnings,
    echo,
    painter,
    quote,
    show,
)
from jotkit.cli.sources import (
    CliError,
    CliInputError,
    check_jwks_url,
    dump_json,
    fetch_jwks,
    load_key_file,
    one_source,
    read_token,
    reporting,
    secret_key,
    signing_key,
)
from jotkit.codes import ERR_JWT_MISSING_EXP
from jotkit.jose import ALGORITHMS, InvalidPolicy, JoseError, Key, KeySet, Policy, jwt
from jotkit.jose.dpop import DPOP_TYP, make_proof
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES

__all__ = ["token"]

# decode is for looking: it shows tokens up to 8x the verifier's cap, and warns past the cap.
DECODE_MAX_TOKEN_BYTES = 8 * DEFAULT_MAX_TOKEN_BYTES
_CLAIM_ORDER = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")
NOT_VERIFIED = (
    "signed, not encrypted: anyone holding this token can read it; this decode verified nothing"
)
UNSIGNED = "unsigned (alg: none): anyone can forge it and read it; this decode verified nothing"
READABLE = "signed, not encrypted: anyone holding this token can read it"
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(s|m|h|d)?")  # ASCII digits: \d takes any script's
_MAX_DURATION = 10 * 365 * 86400  # past ten years, an --exp or --leeway is a typo (or infinite)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Seconds from ``90``, ``30s``, ``15m``, ``2h`` or ``1d``; anything else is exit 2."""
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration like 30s, 15m, 2h or 1d", ctx, param)
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > _MAX_DURATION:
        raise click.BadParameter(f"{value[:20]!r} is over ten years", ctx, param)
    return seconds


def _one_or_many(values: tuple[str, ...]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


# -- commands -----------------------------------------------------------------------------

_colour_option = click.option(
    "--color/--no-color",
    "color",
    default=None,
    help="Colour the output (default: only on a terminal, and not when NO_COLOR is set).",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON document on stdout, warnings included."
)


@click.group()
def token() -> None:
    """Inspect, verify and sign JWTs (decode shows what is inside: signed, not encrypted).

    TOKEN may be given as - (or left out) to read it from stdin, which keeps it out of the
    shell history and the process list.

    \b
    Exit codes:
      0  success (decoded, valid, signed)
      1  the operation failed: the token does not decode or does not verify, signing was
         refused, the JWKS (or the --feed) could not be fetched
      2  bad usage or unreadable input (unknown option, missing file, no key in a key file)
    """


@token.command()
@click.argument("token_text", metavar="[TOKEN|-]", required=False)
@_json_option
@_colour_option
def decode(token_text: str | None, as_json: bool, color: bool | None) -> None:
    """Show a token's header and claims WITHOUT verifying anything, with warnings.

    Times (exp, nbf, iat, auth_time) are shown as dates with how far they are from now.
    A token that does not decode is exit 1 with its JoseError code.
    """
    with reporting(as_json, verified=False):
        text = read_token(token_text, max_bytes=DECODE_MAX_TOKEN_BYTES)
        try:
            header, claims = jwt.peek(text, max_token_bytes=DECODE_MAX_TOKEN_BYTES)
        except JoseError as exc:  # a JWE or a JSON serialization is named by its code
            raise CliError(exc.code, f"not a decodable JWT: {exc}") from None
        now = time.time()
        times = describe_times(claims, now)
        warnings = detect_warnings(header, claims, now, len(text))
        notice = UNSIGNED if any(w["code"] == "WARN_ALG_NONE" for w in warnings) else NOT_VERIFIED
        binding = _binding(header, claims)
        if as_json:
            document = {
                "verified": False,
                "notice": notice,
                "header": header,
                "claims": claims,
                "times": times,
                "warnings": warnings,
            }
            if binding is not None:
                document["dpop"] = binding
            click.echo(dump_json(document))
            return
        paint = painter(colour_enabled(color))
        show(header, claims, times, warnings, paint)
        if binding is not None:
            echo(paint(binding["explanation"], "heading"))
        echo(paint(notice, "heading"))


def _binding(header: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any] | None:
    """What decode says about DPoP (RFC 9449): a bound token's cnf.jkt, or a proof."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if isinstance(jkt, str):
        return {
            "sender_constrained": True,
            "jkt": jkt,
            "explanation": (
                f"sender-constrained (DPoP, RFC 9449): bound to the key with thumbprint "
                f"cnf.jkt={jkt}; it is refused unless sent as 'Authorization: DPoP' with a "
                "proof signed by that key"
            ),
        }
    if header.get("typ") == DPOP_TYP:
        return {
            "proof": True,
            "explanation": (
                f"a DPoP proof (RFC 9449) for {claims.get('htm')} {claims.get('htu')}: "
                "it is valid for one request, once, shortly after its iat"
            ),
        }
    return None


@token.command()
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The client's private key (JWK, JWKS or PEM).",
)
@click.option("--kid", default=None, help="Picks the key in a JWKS file.")
@click.option("--method", default="GET", show_default=True, help="The request's HTTP method.")
@click.option("--url", required=True, help="The request's URL (query and fragment are dropped).")
@click.option(
    "--access-token",
    default=None,
    help="The DPoP-bound token the request sends (- reads it from stdin).",
)
@click.option("--nonce", default=None, help="A nonce the server sent in DPoP-Nonce.")
def dpop(
    key_file: str,
    kid: str | None,
    method: str,
    url: str,
    access_token: str | None,
    nonce: str | None,
) -> None:
    """Print a DPoP proof (RFC 9449) for one request; each proof works once, for a minute.

    \b
    curl -H "Authorization: DPoP $AT" \\
         -H "DPoP: $(jotkit token dpop --key client.jwk --url https://api.example/me \\
                     --access-token "$AT")" https://api.example/me
    """
    key = signing_key(key_file, kid)
    if access_token == "-":
        # Keeps the token out of the process list and the shell history.
        access_token = read_token("-", max_bytes=DEFAULT_MAX_TOKEN_BYTES)
    try:
        proof = make_proof(key, method.upper(), url, access_token=access_token, nonce=nonce)
    except JoseError as exc:
        raise CliError(exc.code, str(exc)) from None
    click.echo(proof)


@token.command()
@click.argument("token_text", metavar="[TOKEN|-]", required=False)
@click.option(
    "--jwks", "jwks_url", callback=check_jwks_url, help="Fetch the keys from this JWKS URL."
)
@click.option("--key", "key_file", type=click.Path(dir_okay=False), help="PEM, JWK or JWKS file.")
@click.option("--secret-file", type=click.Path(dir_okay=False), help="HMAC secret in a file.")
@click.option("--secret-env", metavar="NAME", help="HMAC secret in this environment variable.")
@click.option(
    "--feed",
    "feed_url",
    callback=check_jwks_url,
    help="Also check revocation: the auth server's base URL (reads URL/revocations; "
    "JOTKIT_FEED_TOKEN is sent as Bearer when set).",
)
@click.option("--iss", multiple=True, help="Accepted issuer (repeatable).")
@click.option("--aud", multiple=True, help="Our audience (repeatable: any of them).")
@click.option("--sub", default=None, help="Required subject.")
@click.option(
    "--alg", "algs", multiple=True, type=click.Choice(sorted(ALGORITHMS)), help="Allowed alg."
)
@click.option("--typ", default=None, help='Required "typ" header, e.g. at+jwt.')
@click.option(
    "--leeway",
    metavar="DURATION",
    callback=_duration,
    default="0",
    help="Clock skew allowed (e.g. 30s).",
)
@click.option(
    "--max-age",
    metavar="DURATION",
    callback=_duration,
    default=None,
    help="Refuse tokens older (by iat).",
)
@click.option(
    "--timeout",
    metavar="DURATION",
    callback=_duration,
    default="10s",
    help="JWKS and feed fetch timeout [10s].",
)
@_json_option
@_colour_option
def verify(
    token_text: str | None,
    jwks_url: str | None,
    key_file: str | None,
    secret_file: str | None,
    secret_env: str | None,
    feed_url: str | None,
    iss: tuple[str, ...],
    aud: tuple[str, ...],
    sub: str | None,
    algs: tuple[str, ...],
    typ: str | None,
    leeway: float,
    max_age: float | None,
    timeout: float,
    as_json: bool,
    color: bool | None,
) -> None:
    """Verify a token's signature and claims; print "valid" and its claims, or the rule it
    breaks and its code ("INVALID: ERR_JWT_EXPIRED: token expired 3 min ago"). Exit 0/1.

    "exp" is required and "aud" in a token is always checked: give --aud for tokens that
    carry one. Keys: --key FILE (PEM public or private, JWK, JWKS), --jwks URL, or an HMAC
    secret (--secret-file FILE, --secret-env NAME). Revocation is checked only with --feed
    URL (the auth server's revocation feed); without it the output says it was not.
    """
    with reporting(as_json, valid=False, verdict="error"):
        one_source(key=key_file, jwks=jwks_url, secret_file=secret_file, secret_env=secret_env)
        shown = {  # the policy as --json prints it
            "algorithms": list(algs) or None,
            "issuer": _one_or_many(iss),
            "audience": _one_or_many(aud),
            "subject": sub,
            "typ": typ,
            "leeway": leeway,
            "max_age": max_age,
        }
        try:  # built before anything is read: options that make no policy are bad usage
            policy = Policy(
                algorithms=algs or None,
                issuer=_one_or_many(iss),
                audience=_one_or_many(aud),
                subject=sub,
                typ=typ,
                leeway=leeway,
                max_age=max_age,
            )
        except InvalidPolicy as exc:
            raise CliInputError(exc.code, str(exc)) from None
        text = read_token(token_text, max_bytes=DECODE_MAX_TOKEN_BYTES)
        keys: Key | KeySet
        warnings: list[dict[str, str]] = []
        if key_file is not None:
            loaded = load_key_file(key_file)
            warnings += loaded.warnings
            keys = KeySet(loaded.keys) if loaded.form == "jwks" else loaded.keys[0]
        elif jwks_url is not None:
            keys = fetch_jwks(jwks_url, timeout)
        else:
            keys = secret_key(secret_file, secret_env, algs[0] if len(algs) == 1 else None)
        now = time.time()
        try:
            claims = jwt.verify(text, keys, policy, now=now)
            failure = None
        except JoseError as exc:
            claims, failure = {}, exc
        revocation = "not checked (no --feed)"
        if failure is None and feed_url is not None:
            try:
                revocation = _check_revocation(feed_url, claims, timeout)
            except JoseError as exc:
                claims, failure = {}, exc
        try:
            header, peeked = jwt.peek(text, max_token_bytes=DECODE_MAX_TOKEN_BYTES)
            warnings += detect_warnings(header, peeked, now, len(text))
        except JoseError:
            header = {}
        paint = painter(colour_enabled(color))
        if failure is not None:
            error = {"code": failure.code, "message": str(failure)}
            if hasattr(failure, "claim"):
                error["claim"] = failure.claim
            if as_json:
                document = {"valid": False, "verdict": "invalid", "error": error}
                click.echo(dump_json({**document, "policy": shown, "warnings": warnings}))
            else:
                echo(f"{paint('INVALID:', 'invalid')} {failure.code}: {failure}")
                for warning in warnings:
                    message = f"{warning['code']}: {warning['message']}"
                    echo(f"{paint('warning:', 'warning')} {message}")
            click.get_current_context().exit(1)
        times = describe_times(claims, now)
        if as_json:
            document = {"valid": True, "verdict": "valid", "error": None, "header": header}
            document |= {"claims": claims, "times": times, "policy": shown}
            document["revocation"] = revocation
            click.echo(dump_json({**document, "warnings": warnings}))
            return
        checked = f"{header.get('alg')} signature" + (
            f" (kid {quote(header['kid'])})" if isinstance(header.get("kid"), str) else ""
        )
        echo(f"{paint('valid', 'valid')}: {checked} and claims checked; {READABLE}")
        echo(f"revocation: {revocation}")
        show(header, claims, times, warnings, paint)


def _check_revocation(feed_url: str, claims: dict[str, Any], timeout: float) -> str:
    """Read the feed once; RevokedToken when it names the token's jti, sid or user watermark."""
    from jotkit.revocation import RevocationSet
    from jotkit.revocation.http import FeedError, HttpFeedSubscriber

    revocations = RevocationSet()
    feed_token = os.environ.get("JOTKIT_FEED_TOKEN")
    headers = {"Authorization": f"Bearer {feed_token}"} if feed_token else None
    subscriber = HttpFeedSubscriber(
        feed_url, revocations, wait_seconds=0, headers=headers, connect_timeout_seconds=timeout
    )
    try:
        subscriber.poll_once()
    except FeedError as exc:
        raise CliError(exc.code, f"{feed_url}: {exc}") from None
    finally:
        subscriber.close()
    revocations.is_revoked(claims)
    return f"checked against {feed_url}/revocations (not revoked at cursor {subscriber.cursor})"


def _parse_claim(text: str) -> tuple[str, Any]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise click.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="'--claim'")
    try:
        # JSON when it parses (5, true, ["a"], "quoted"), else the text itself.
        return name, orjson.loads(value)
    except orjson.JSONDecodeError:
        return name, value


@token.command()
@click.option("--key", "key_file", type=click.Path(dir_okay=False), help="Private PEM/JWK/JWKS.")
@click.option("--secret-file", type=click.Path(dir_okay=False), help="HMAC secret in a file.")
@click.option("--secret-env", metavar="NAME", help="HMAC secret in this environment variable.")
@click.option("--claim", "claim_args", multiple=True, metavar="NAME=VALUE", help="Repeatable.")
@click.option(
    "--exp",
    "lifetime",
    metavar="DURATION",
    callback=_duration,
    default=None,
    help="Lifetime: 30s, 15m, 2h, 1d.",
)
@click.option("--allow-no-exp", is_flag=True, help="Sign without exp (a token that never dies).")
@click.option("--iss", default=None, help="Issuer claim.")
@click.option("--aud", multiple=True, help="Audience claim (repeat for a list).")
@click.option("--sub", default=None, help="Subject claim.")
@click.option("--alg", type=click.Choice(sorted(ALGORITHMS)), default=None, help="Algorithm.")
@click.option("--kid", default=None, help="kid header; picks the key in a JWKS file.")
@click.option("--typ", default=None, help='"typ" header (default JWT), e.g. at+jwt.')
def sign(
    key_file: str | None,
    secret_file: str | None,
    secret_env: str | None,
    claim_args: tuple[str, ...],
    lifetime: float | None,
    allow_no_exp: bool,
    iss: str | None,
    aud: tuple[str, ...],
    sub: str | None,
    alg: str | None,
    kid: str | None,
    typ: str | None,
) -> None:
    """Sign a JWT for testing and print it. "iat" is now; "exp" comes from --exp.

    --claim values are JSON when they parse (5, true, ["a","b"]) and strings otherwise.
    jwt.sign's refusals (no exp, secret-named claims such as password) are exit 1.

    \b
    jotkit token sign --key signing.pem --sub alice --aud api --exp 15m --claim admin=true
    """
    one_source(key=key_file, secret_file=secret_file, secret_env=secret_env)
    now = int(time.time())
    options: dict[str, Any] = {"iss": iss, "sub": sub, "aud": _one_or_many(aud)}
    options["exp"] = None if lifetime is None else now + round(lifetime)
    given: dict[str, Any] = {}
    options = {name: value for name, value in options.items() if value is not None}
    for name, value in [*options.items(), *map(_parse_claim, claim_args)]:
        if name in given:
            raise click.UsageError(f'claim "{name}" is given twice')
        given[name] = value
    # The registered claims first, in the order RFC 7519 lists them, then the rest.
    claims = {"iat": now} | given
    claims = {name: claims[name] for name in _CLAIM_ORDER if name in claims} | claims
    if key_file is not None:
        key = signing_key(key_file, kid)
    else:
        key = secret_key(secret_file, secret_env, alg or "HS256")
        key.kid = kid
    header = {"typ": typ} if typ is not None else None
    try:
        signed = jwt.sign(claims, key, alg=alg, header=header, allow_no_exp=allow_no_exp)
    except JoseError as exc:
        message = str(exc)
        if exc.code == ERR_JWT_MISSING_EXP:
            message = (
                'refusing to sign a JWT without "exp": it would never expire '
                "(give --exp 15m, or --allow-no-exp if you mean it)"
            )
        raise CliError(exc.code, message) from None
    click.echo(signed)
