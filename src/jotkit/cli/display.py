"""How ``jotkit token`` shows a token: coloured JSON, times in words, and warnings.

Everything printed here came from a token nobody has verified yet, so every string goes
through ``quote``: a token must not be able to drive the terminal that shows it.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeGuard

import click

from jotkit.jose.claims import (
    PERSONAL_CLAIM_NAMES,
    SECRET_CLAIM_NAMES,
    sensitive_claims,
    span_in_words,
)
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES

__all__ = [
    "KEY_HEADERS",
    "LONG_LIFETIME_SECONDS",
    "TIME_CLAIMS",
    "Paint",
    "colour_enabled",
    "describe_times",
    "detect_warnings",
    "echo",
    "painter",
    "quote",
    "render",
    "show",
]

LONG_LIFETIME_SECONDS = 3600
TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
# Header members that point at or carry a key: a verifier must never pick its key from the
# token it is verifying (RFC 8725 §3.10; CVE-2018-0114 is the "jwk" one).
KEY_HEADERS = ("jku", "x5u", "jwk", "x5c")
# Unicode categories never printed raw: controls (C0, DEL and C1, whose CSI can drive a
# terminal), format characters (bidi overrides that reorder text), separators, unassigned.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_STYLES: dict[str, dict[str, Any]] = {
    "key": {"fg": "blue", "bold": True},
    "string": {"fg": "green"},
    "number": {"fg": "yellow"},
    "literal": {"fg": "magenta"},
    "note": {"dim": True},
    "heading": {"bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "invalid": {"fg": "red", "bold": True},
    "valid": {"fg": "green", "bold": True},
}

Paint = Callable[[str, str], str]
"""Styles a piece of text for its role ("key", "string", "warning", ...)."""


# -- rendering ----------------------------------------------------------------------------


def colour_enabled(choice: bool | None) -> bool:
    """--color / --no-color win; otherwise colour only on a terminal and without NO_COLOR
    (https://no-color.org: set and not empty means no colour)."""
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def painter(enabled: bool) -> Paint:
    """A ``Paint`` that adds ANSI styles, or leaves the text as it is when not ``enabled``."""
    if not enabled:
        return lambda text, role: text
    return lambda text, role: click.style(text, **_STYLES[role])


def quote(text: str) -> str:
    """A JSON string literal that is safe to print: no raw control or bidi characters."""
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isascii() and quoted.isprintable():
        return quoted
    return "".join(
        json.dumps(char)[1:-1] if unicodedata.category(char) in _UNPRINTABLE else char
        for char in quoted
    )


def render(value: Any, paint: Paint, depth: int = 0, notes: Mapping[str, str] | None = None) -> str:
    """Indented JSON, coloured by ``paint``; ``notes`` adds a ``//`` comment after members."""
    pad = "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for index, (name, item) in enumerate(value.items()):
            comma = "," if index < len(value) - 1 else ""
            line = f"{pad}{paint(quote(str(name)), 'key')}: {render(item, paint, depth + 1)}"
            line += comma
            if notes and name in notes:
                line += "  " + paint("// " + notes[name], "note")
            lines.append(line)
        return "{\n" + "\n".join(lines) + "\n" + "  " * depth + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [pad + render(item, paint, depth + 1) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    if isinstance(value, str):
        return paint(quote(value), "string")
    if value is None or isinstance(value, bool):
        return paint(json.dumps(value), "literal")
    return paint(json.dumps(value), "number")


def echo(text: str) -> None:
    """Print ``text`` as painted, ANSI codes included."""
    # color=True: the ANSI codes in ``text`` are there because colour_enabled said so, and
    # click would otherwise strip them from a pipe even under --color.
    click.echo(text, color=True)


def show(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    times: Mapping[str, Mapping[str, Any]],
    warnings: list[dict[str, str]],
    paint: Paint,
) -> None:
    """Print the header, the claims (time claims annotated from ``times``) and the warnings."""
    notes = {name: f"{time['iso']}, {time['relative']}" for name, time in times.items()}
    echo(paint("HEADER", "heading"))
    echo(render(header, paint))
    echo(paint("CLAIMS", "heading"))
    echo(render(claims, paint, notes=notes))
    for warning in warnings:
        echo(f"{paint('warning:', 'warning')} {warning['code']}: {warning['message']}")


# -- times in words -----------------------------------------------------------------------


def _is_date(value: object) -> TypeGuard[float]:
    # type(), not isinstance(): true is not a date (as in jotkit.jose.claims); orjson has
    # already refused NaN and Infinity.
    return type(value) is int or type(value) is float


def _iso(value: float) -> str:
    try:
        iso = datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return "beyond year 9999" if value > 0 else "before year 1"
    return iso.replace("+00:00", "Z")


def _relative(name: str, delta: float) -> str:
    span = span_in_words(delta)
    future = delta > 0
    if name == "exp":
        return f"expires in {span}" if future else f"expired {span} ago"
    if name == "nbf":
        return f"not valid for another {span}" if future else f"valid since {span} ago"
    verb = "issued" if name == "iat" else "authenticated"
    return f"{verb} {span} in the future" if future else f"{verb} {span} ago"


def describe_times(claims: Mapping[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """The time claims as ISO dates and spans from ``now`` ("expires in 12 min")."""
    times: dict[str, dict[str, Any]] = {}
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if not _is_date(value):
            continue
        times[name] = {
            "value": value,
            "iso": _iso(value),
            "relative": _relative(name, value - now),
            "seconds_from_now": round(value - now),
        }
    return times


# -- warnings -----------------------------------------------------------------------------


def _warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _names(names: list[str]) -> str:
    return ", ".join(quote(name) for name in sorted(names))


def detect_warnings(
    header: Mapping[str, Any], claims: Mapping[str, Any], now: float, size: int
) -> list[dict[str, str]]:
    """What is risky about a token, whatever its signature: each warning has a stable code."""
    found = []
    alg = header.get("alg")
    if isinstance(alg, str) and alg.lower() == "none":
        found.append(
            _warning(
                "WARN_ALG_NONE",
                'alg is "none": the token is unsigned, anyone can forge it; '
                "no jotkit verifier accepts it",
            )
        )
    present = [name for name in KEY_HEADERS if name in header]
    if present:
        found.append(
            _warning(
                "WARN_KEY_HEADER",
                f"the header carries {_names(present)}: a key named or embedded by the token "
                "itself proves nothing; verifiers must use their own keys (jotkit ignores it)",
            )
        )
    if "crit" in header:
        found.append(
            _warning(
                "WARN_CRIT",
                'the header lists critical extensions ("crit") jotkit does not implement: '
                "every jotkit verifier refuses the token",
            )
        )
    if "exp" not in claims:
        found.append(_warning("WARN_NO_EXP", 'no "exp" claim: this token never expires'))
    for name in TIME_CLAIMS:
        if name in claims and not _is_date(claims[name]):
            found.append(
                _warning("WARN_BAD_DATE", f'"{name}" is not a NumericDate (seconds, a number)')
            )
    exp = claims.get("exp")
    if _is_date(exp):
        start_name = next((n for n in ("iat", "nbf") if _is_date(claims.get(n))), None)
        start = claims[start_name] if start_name else now
        if exp - start > LONG_LIFETIME_SECONDS:
            frame = f"from {start_name} to exp" if start_name else "left before exp"
            found.append(
                _warning(
                    "WARN_LONG_LIFETIME",
                    f"lifetime {span_in_words(exp - start)} ({frame}) is over 1 h: a stolen token "
                    "stays usable that long",
                )
            )
    secret = sensitive_claims(claims, SECRET_CLAIM_NAMES)
    if secret:
        found.append(
            _warning(
                "WARN_SECRET_CLAIM",
                f"claims that look like secrets: {_names(secret)}; anyone holding the token "
                "can read them",
            )
        )
    personal = sensitive_claims(claims, PERSONAL_CLAIM_NAMES)
    if personal:
        found.append(
            _warning(
                "WARN_PERSONAL_CLAIM",
                f"claims that look like personal data: {_names(personal)}; anyone holding "
                "the token can read them",
            )
        )
    if size > DEFAULT_MAX_TOKEN_BYTES:
        found.append(
            _warning(
                "WARN_TOKEN_TOO_LARGE",
                f"token is {size} bytes: jotkit verifiers refuse tokens over "
                f"{DEFAULT_MAX_TOKEN_BYTES} bytes",
            )
        )
    return found
