"""One verification policy: what a JWT must satisfy besides its signature, as one value.

``Policy`` is what ``jwt.verify``, ``Verifier``, ``Guard`` and ``jotkit token verify`` take
(panva/jose's ``JWTVerifyOptions``): built and validated once, then passed down. A misspelt
algorithm, a negative leeway or an audience of the wrong type fails when the policy is built,
with an ``InvalidPolicy`` carrying a stable code, never at the first request.
"""

from __future__ import annotations

import difflib
import math
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from jotkit.codes import (
    ERR_POLICY_ALGORITHMS,
    ERR_POLICY_AUDIENCE,
    ERR_POLICY_CLOCK,
    ERR_POLICY_ISSUER,
    ERR_POLICY_LEEWAY,
    ERR_POLICY_MAX_AGE,
    ERR_POLICY_MAX_TOKEN_BYTES,
    ERR_POLICY_REQUIRE,
    ERR_POLICY_SUBJECT,
    ERR_POLICY_TYP,
)
from jotkit.jose.algorithms import ALGORITHMS
from jotkit.jose.claims import REQUIRE_EXP
from jotkit.jose.errors import InvalidPolicy
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES

__all__ = [
    "ACCESS_TOKEN_CLAIMS",
    "DEFAULT_POLICY",
    "Policy",
]


# RFC 9068 §2.2 requires these of an access token (client_id too, but other issuers vary);
# iat also makes per-user watermarks decidable (a token without iat cannot prove it is newer).
ACCESS_TOKEN_CLAIMS: tuple[str, ...] = ("exp", "iat", "sub", "jti")


@dataclass(frozen=True, slots=True)
class Policy:
    """What a JWT must satisfy besides its signature; frozen, validated when built.

    ``algorithms``: the accepted ``alg`` names (None: whatever the key allows; a bare string
    is one name). ``issuer``/``audience``: one string or a collection of accepted ones; ``aud``
    in a token is always checked, so a token carrying one needs ``audience``. ``subject``: the
    required ``sub``. ``typ``: the required ``typ`` header (RFC 8725 §3.11). ``leeway``:
    seconds of clock skew allowed. ``max_age``: refuse tokens older than this (by ``iat``).
    ``require``: claim names that must be present (``exp`` by default). ``max_token_bytes``:
    longer tokens are refused before any decoding. ``clock``: seconds since the epoch.

    Collections are stored as frozensets (``require`` as a tuple), so a policy is hashable
    and nothing a caller mutates later changes it. ``dataclasses.replace`` makes a changed
    copy, validated again.
    """

    algorithms: Collection[str] | None = None
    issuer: str | Collection[str] | None = None
    audience: str | Collection[str] | None = None
    subject: str | None = None
    typ: str | None = None
    leeway: float = 0
    max_age: float | None = None
    require: Collection[str] = REQUIRE_EXP
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: normalising in place is the one write
        put(self, "algorithms", _algorithms(self.algorithms))
        put(self, "issuer", _names(self.issuer, "issuer", ERR_POLICY_ISSUER))
        put(self, "audience", _names(self.audience, "audience", ERR_POLICY_AUDIENCE))
        _text(self.subject, "subject", ERR_POLICY_SUBJECT)
        _text(self.typ, "typ", ERR_POLICY_TYP)
        _seconds(self.leeway, "leeway", ERR_POLICY_LEEWAY)
        if self.max_age is not None:
            _seconds(self.max_age, "max_age", ERR_POLICY_MAX_AGE)
        put(self, "require", _required(self.require))
        size = self.max_token_bytes
        if type(size) is not int or size <= 0:
            raise InvalidPolicy(
                f"max_token_bytes must be a positive int, not {size!r}",
                code=ERR_POLICY_MAX_TOKEN_BYTES,
            )
        if not callable(self.clock):
            raise InvalidPolicy(
                "clock must be a function returning seconds since the epoch",
                code=ERR_POLICY_CLOCK,
            )

    @classmethod
    def for_access_tokens(
        cls,
        *,
        issuer: str,
        audience: str | Collection[str],
        typ: str | None = "at+jwt",
        require: Collection[str] = ACCESS_TOKEN_CLAIMS,
        **rest: Any,
    ) -> Policy:
        """The policy of an RFC 9068 access token, the ``Guard``'s defaults: ``typ`` at+jwt
        and ``exp iat sub jti`` required, for one issuer and audience; ``rest`` as Policy."""
        return cls(issuer=issuer, audience=audience, typ=typ, require=require, **rest)


def _algorithms(algorithms: Any) -> frozenset[str] | None:
    if algorithms is None:
        return None
    if isinstance(algorithms, str):
        algorithms = (algorithms,)
    if not isinstance(algorithms, Collection):
        raise InvalidPolicy(
            f"algorithms must be names of JWS algorithms, not {type(algorithms).__name__}",
            code=ERR_POLICY_ALGORITHMS,
        )
    if not algorithms:
        raise InvalidPolicy(
            "algorithms is empty: no token could ever verify (None means: what the key allows)",
            code=ERR_POLICY_ALGORITHMS,
        )
    for name in algorithms:
        if type(name) is not str or name not in ALGORITHMS:
            raise InvalidPolicy(
                f"unknown algorithm {name!r}{_did_you_mean(name)} (known: {', '.join(ALGORITHMS)})",
                code=ERR_POLICY_ALGORITHMS,
            )
    return frozenset(algorithms)


def _did_you_mean(name: Any) -> str:
    if type(name) is not str:
        return ""
    by_upper = {known.upper(): known for known in ALGORITHMS}
    close = difflib.get_close_matches(name.upper(), by_upper, n=1, cutoff=0.7)
    return f", did you mean {by_upper[close[0]]!r}?" if close else ""


def _names(value: Any, what: str, code: str) -> str | frozenset[str] | None:
    """One name or a non-empty collection of names, as a str or a frozenset."""
    if value is None or (type(value) is str and value):
        return value
    if type(value) is str:
        raise InvalidPolicy(f"{what} is an empty string", code=code)
    if isinstance(value, bytes | bytearray) or not isinstance(value, Collection):
        raise InvalidPolicy(
            f"{what} must be a string or a collection of strings, not {type(value).__name__}",
            code=code,
        )
    names = frozenset(value)
    if not names:
        raise InvalidPolicy(f"{what} is an empty collection: no token could match", code=code)
    for name in names:
        if type(name) is not str or not name:
            raise InvalidPolicy(
                f"{what} holds {name!r}: each must be a non-empty string", code=code
            )
    return names


def _text(value: Any, what: str, code: str) -> None:
    if value is not None and (type(value) is not str or not value):
        raise InvalidPolicy(f"{what} must be a non-empty string or None, not {value!r}", code=code)


def _seconds(value: Any, what: str, code: str) -> None:
    # bool passes as the int it is: jwt.verify's keyword memo cannot tell True from 1.
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidPolicy(
            f"{what} must be a finite, non-negative number of seconds, not {value!r}", code=code
        )


def _required(require: Any) -> tuple[str, ...]:
    """``require`` as a tuple; ("exp",) as the shared REQUIRE_EXP, which the claims check
    tests by identity to skip its loop (the default's hot path)."""
    if isinstance(require, str):
        raise InvalidPolicy(
            f"require is the bare string {require!r}: give a collection of claim names, "
            f"e.g. ({require!r},)",
            code=ERR_POLICY_REQUIRE,
        )
    if not isinstance(require, Collection):
        raise InvalidPolicy(
            f"require must be a collection of claim names, not {type(require).__name__}",
            code=ERR_POLICY_REQUIRE,
        )
    names = tuple(require)
    for name in names:
        if type(name) is not str or not name:
            raise InvalidPolicy(
                f"require holds {name!r}: each must be a claim name", code=ERR_POLICY_REQUIRE
            )
    return REQUIRE_EXP if names == REQUIRE_EXP else names


def policy_from(
    policy: Policy | None, caller: str, *, stacklevel: int = 3, **keywords: Any
) -> Policy:
    """``policy``, or the Policy of ``keywords`` (None: Policy's default); both is a
    TypeError. For jwt.verify, Verifier and Guard (the core's internal interface)."""
    given = {name: value for name, value in keywords.items() if value is not None}
    if policy is not None:
        if given:
            raise TypeError(f"{caller} takes a policy or the keywords {sorted(given)}, not both")
        if not isinstance(policy, Policy):
            raise TypeError(f"{caller}: policy must be a jotkit.jose.Policy")
        return policy
    require = given.get("require")
    if isinstance(require, str):
        # Before Policy, a bare string was read as one claim name; Policy refuses it.
        warnings.warn(
            f"require={require!r} is read as ({require!r},): pass a collection of claim names "
            "(Policy refuses a bare string)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        given["require"] = (require,)
    return Policy(**given)


DEFAULT_POLICY = Policy()
"""The all-defaults policy: any algorithm the key allows, ``exp`` required, no leeway."""
