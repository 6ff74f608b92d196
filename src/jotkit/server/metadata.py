"""Authorization server metadata (RFC 8414): what the server advertises, and where.

jotkit is an OAuth 2.0 authorization server with a token endpoint that takes refresh grants
(RFC 6749 §6) and no authorization endpoint: a login is ``POST /login`` with JSON, which no
OAuth flow names. RFC 8414 §2 still requires ``response_types_supported``; the honest value
is ``["none"]``, the registered response type under which the authorization endpoint issues
nothing (OAuth 2.0 Multiple Response Type Encoding Practices §4), and it states no
authorization endpoint because no advertised grant type uses one. An empty list says the
same but fails validators that read "REQUIRED" as "non-empty" (authlib's).

Every URL is the issuer plus a path, so an issuer with a path (``https://host/tenant``)
advertises ``https://host/tenant/...``; ``paths.IssuerPaths`` makes the server answer there.
"""

from __future__ import annotations

from typing import Any

from jotkit.jose.dpop import DEFAULT_DPOP_ALGORITHMS
from jotkit.server.settings import Settings

__all__ = ["METADATA_PATH", "OPENID_CONFIGURATION_PATH", "metadata"]

METADATA_PATH = "/.well-known/oauth-authorization-server"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"


def metadata(settings: Settings) -> dict[str, Any]:
    """The RFC 8414 document of this server (members it has no use for are left out)."""
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/token/refresh",
        "grant_types_supported": ["refresh_token"],
        "response_types_supported": ["none"],
        # Public clients: a refresh token is its own credential (rotated, reuse-detected).
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint": f"{issuer}/revoke",
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint": f"{issuer}/introspect",
        # The introspection secret as Basic password or as a Bearer token.
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "Bearer"],
        "service_documentation": f"{issuer}/docs",
        # RFC 9449 §5.1: the token endpoint takes DPoP proofs signed with these.
        "dpop_signing_alg_values_supported": list(DEFAULT_DPOP_ALGORITHMS),
        # Not registered by RFC 8414 (§2 allows more members): the algorithm access tokens
        # are signed with, and the revocation feed resource servers follow.
        "access_token_signing_alg_values_supported": [settings.algorithm],
        "revocation_feed_endpoint": f"{issuer}/revocations",
    }
