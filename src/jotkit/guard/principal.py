"""``Principal``: the verified claims of a request's access token, as a resource server uses
them (RFC 9068 §2.2). Called ``Claims`` before 0.1.0's renames (docs/renames.md): the claims
*checks* are ``jotkit.jose.claims``."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jotkit.guard.errors import InsufficientScope
from jotkit.jose.errors import InvalidClaim

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who the token speaks for and what it allows; ``raw`` holds every claim, read-only.

    ``scope`` is the set of the space-separated ``scope`` claim's values (RFC 8693 §4.2).
    ``jkt`` is the token's ``cnf.jkt`` (RFC 9449 §6.1): set, the token is bound to that key
    and is only accepted with a DPoP proof signed by it.
    """

    sub: str
    scope: frozenset[str]
    sid: str | None
    jti: str | None
    client_id: str | None
    exp: float
    raw: Mapping[str, Any]
    jkt: str | None = None

    @classmethod
    def from_mapping(cls, claims: dict[str, Any]) -> Principal:
        """Build from verified claims; InvalidClaim when a claim has the wrong JSON type."""
        sub = claims.get("sub")
        if type(sub) is not str:
            raise InvalidClaim('"sub" must be a string', claim="sub")
        scope = claims.get("scope")
        if scope is None:
            scopes: frozenset[str] = frozenset()
        elif type(scope) is str:
            scopes = frozenset(scope.split())
        else:
            raise InvalidClaim('"scope" must be a space-separated string', claim="scope")
        sid, jti, client_id = claims.get("sid"), claims.get("jti"), claims.get("client_id")
        for name, value in (("sid", sid), ("jti", jti), ("client_id", client_id)):
            if value is not None and type(value) is not str:
                raise InvalidClaim(f'"{name}" must be a string', claim=name)
        exp = claims.get("exp")
        if type(exp) is not int and type(exp) is not float:
            raise InvalidClaim('"exp" must be a NumericDate', claim="exp")
        return cls(sub, scopes, sid, jti, client_id, exp, MappingProxyType(claims), _jkt(claims))

    def require_scopes(self, scopes: Collection[str]) -> None:
        """Raise InsufficientScope unless every scope in ``scopes`` was granted."""
        missing = [name for name in scopes if name not in self.scope]
        if missing:
            raise InsufficientScope(f"token lacks scope {' '.join(missing)}", scopes=sorted(scopes))

    def require(self, scopes: Collection[str]) -> None:
        """Deprecated since 0.1.0, removed in 0.3.0: ``require_scopes``."""
        warnings.warn(
            "Principal.require is deprecated: use require_scopes", DeprecationWarning, stacklevel=2
        )
        self.require_scopes(scopes)


def _jkt(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if type(cnf) is dict else None
    if type(jkt) is not str or not jkt:
        # A confirmation we cannot honour must not turn into an unbound (bearer) token.
        raise InvalidClaim('"cnf" must be an object with a "jkt" string', claim="cnf")
    return jkt
