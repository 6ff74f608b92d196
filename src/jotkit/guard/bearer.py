"""Finding the access token in a request: RFC 6750 §2.1 Authorization header, or a cookie."""

from __future__ import annotations

import re
from collections.abc import Mapping

from jotkit.guard.errors import BadAuthorization, MissingCredentials

__all__ = ["bearer_token", "dpop_token", "parse_cookies", "request_token"]

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token, b64token = 1*(ALPHA / DIGIT / "-" /
# "." / "_" / "~" / "+" / "/") *"=". One space exactly, nothing before or after.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")
# RFC 9449 §7.1: the same b64token after the DPoP scheme.
_DPOP = re.compile(r"[Dd][Pp][Oo][Pp] ([A-Za-z0-9\-._~+/]+=*)")
# The auth-scheme (an RFC 9110 token), to tell "not Bearer at all" from "malformed Bearer".
_SCHEME = re.compile(r"\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    MissingCredentials when there is no header or it uses another scheme (the client gets a
    bare Bearer challenge, RFC 6750 §3.1); BadAuthorization when it says Bearer but is
    malformed (400 invalid_request).
    """
    if not authorization:
        raise MissingCredentials("no Authorization header (expected 'Bearer <token>')")
    match = _BEARER.fullmatch(authorization)
    if match is not None:
        return match.group(1)
    scheme = _SCHEME.match(authorization)
    if scheme is None or scheme.group(1).lower() != "bearer":
        raise MissingCredentials("the Authorization header does not use the Bearer scheme")
    raise BadAuthorization(
        "malformed Authorization header: expected 'Bearer <token>' with one space and a "
        "token of A-Z a-z 0-9 - . _ ~ + / and trailing = only"
    )


def dpop_token(authorization: str) -> str | None:
    """The token of an ``Authorization: DPoP <token>`` header value; None for another scheme.

    BadAuthorization when it says DPoP but is malformed.
    """
    if authorization[:5].lower() != "dpop ":
        scheme = _SCHEME.match(authorization)
        if scheme is None or scheme.group(1).lower() != "dpop":
            return None
    match = _DPOP.fullmatch(authorization)
    if match is None:
        raise BadAuthorization("malformed Authorization header: expected 'DPoP <token>'")
    return match.group(1)


def request_token(
    authorization: str | None,
    cookies: Mapping[str, str] | None = None,
    cookie_name: str | None = None,
) -> str:
    """The header's Bearer token, else (when ``cookie_name`` is set) the cookie's token."""
    if authorization or cookie_name is None or not cookies:
        return bearer_token(authorization)
    token = cookies.get(cookie_name)
    if not token:
        return bearer_token(authorization)
    if _BEARER.fullmatch("Bearer " + token) is None:
        raise BadAuthorization(f"cookie {cookie_name!r} does not hold a well-formed token")
    return token


def parse_cookies(header: str) -> dict[str, str]:
    """A Cookie header's name=value pairs (RFC 6265 §5.4); the first of a repeated name wins."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies
