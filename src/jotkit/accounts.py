"""What a user account's email and password must be: one rule, for every way in.

The HTTP API (``server/routes.py`` for the OpenAPI document and request validation,
``server/service.py``) and ``jotkit users`` (``cli/users.py``) import these. No framework,
no I/O: the CLI checks an email without loading the server's web stack.
"""

from __future__ import annotations

import re

__all__ = [
    "EMAIL_PATTERN",
    "MAX_EMAIL_LENGTH",
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_CHARACTERS",
    "is_email",
]

MIN_PASSWORD_CHARACTERS = 8
MAX_PASSWORD_BYTES = 1024  # hashing a megabyte "password" is a cheap denial of service

# One "@"; no control character (C0, DEL, C1: a NUL reached PostgreSQL, which refuses it in
# text) and no Unicode space. The same rule for the HTTP API, the OpenAPI document and `jotkit
# users add`; spelled without \s, whose meaning differs between the regex engines that read it
# (pydantic's Rust engine and Python's count U+0085 as space, ECMA-262 in JSON Schema does not).
_NOT_IN_EMAIL = r"@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF"
EMAIL_PATTERN = rf"^[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}]+$"
MAX_EMAIL_LENGTH = 320  # the store's column; the lower-case form must fit too


def is_email(text: str) -> bool:
    """True when ``text`` passes EMAIL_PATTERN and its lower-case form (how the store keeps
    it; ``lower()`` may lengthen text: "İ" becomes two characters) fits MAX_EMAIL_LENGTH."""
    return len(text.lower()) <= MAX_EMAIL_LENGTH and re.fullmatch(EMAIL_PATTERN, text) is not None
