"""The auth server's configuration: one TOML file plus ``JOTKIT_*`` environment variables.

Precedence, lowest first: defaults, the TOML file (``--config`` / ``JOTKIT_CONFIG``), the
environment (``JOTKIT_<NAME>``), command-line options. Every setting carries its unit in its
name. ``describe()`` renders the table ``jotkit serve --help`` prints.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ConfigError",
    "Settings",
    "default_database_url",
    "describe",
    "load_settings",
    "min_publish_ahead",
]

_ASYMMETRIC_ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA", "Ed25519", "RS256", "PS256")


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the message names it and its variable."""

    code = "ERR_CONFIG"


def _data_dir() -> Path:
    if os.environ.get("JOTKIT_DATA_DIR"):
        return Path(os.environ["JOTKIT_DATA_DIR"])
    xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(xdg) / "jotkit"


def default_database_url() -> str:
    """``sqlite:///<data dir>/jotkit.db``; the data dir is JOTKIT_DATA_DIR or the XDG one."""
    return f"sqlite:///{_data_dir() / 'jotkit.db'}"


@dataclass(frozen=True)
class Settings:
    """Every knob of ``jotkit serve``; see ``describe()`` for the documentation of each."""

    host: str = field(default="127.0.0.1", metadata={"doc": "address to listen on"})
    port: int = field(default=8000, metadata={"doc": "TCP port to listen on"})
    database_url: str = field(
        default_factory=default_database_url,
        metadata={"doc": "sqlite:///path/file.db (default under the data dir) or postgresql://"},
    )
    database_pool_connections: int = field(
        default=10,
        metadata={
            "doc": "threads per thread pool running blocking work (database, argon2); "
            "PostgreSQL keeps up to 2x this many connections per process"
        },
    )
    workers: int = field(
        default=1,
        metadata={"doc": "server processes sharing the port (jotkit serve --workers)"},
    )
    keep_alive_timeout_seconds: float = field(
        default=75.0,
        metadata={
            "doc": "idle HTTP keep-alive connections are closed after this; keep it above "
            "the proxy's (nginx upstream keepalive_timeout: 60 s)"
        },
    )
    issuer: str = field(
        default="",
        metadata={
            "doc": "iss of every token, and the base of every URL the metadata "
            "advertises (may have a path: https://host/tenant); default http://HOST:PORT"
        },
    )
    root_path: str = field(
        default="",
        metadata={
            "doc": "path under which requests reach the server; default the issuer's "
            "path; '/' when a reverse proxy strips that path before forwarding"
        },
    )
    audiences: tuple[str, ...] = field(
        default=("jotkit",), metadata={"doc": "aud of access tokens (comma-separated list)"}
    )
    algorithm: str = field(
        default="ES256",
        metadata={"doc": "signing algorithm: ES256 (default), EdDSA, RS256, ... or HS256"},
    )
    hs256_secret: str = field(
        default="", metadata={"doc": "shared secret for HS256 mode (>= 32 bytes)"}
    )
    master_key: str = field(
        default="", metadata={"doc": "encrypts private signing keys at rest (>= 32 bytes)"}
    )
    access_ttl_seconds: int = field(default=900, metadata={"doc": "access token lifetime"})
    refresh_idle_ttl_seconds: int = field(
        default=14 * 86400, metadata={"doc": "sliding lifetime of a refresh token"}
    )
    refresh_absolute_ttl_seconds: int = field(
        default=30 * 86400, metadata={"doc": "absolute lifetime of a session (refresh family)"}
    )
    reuse_grace_seconds: float = field(
        default=0.0,
        metadata={"doc": "the previous refresh token replayed within this gets the current one"},
    )
    clock_skew_seconds: int = field(
        default=60, metadata={"doc": "margin kept on revocations and retired keys"}
    )
    key_rotation_days: float = field(
        default=30.0, metadata={"doc": "rotate the signing key automatically (0: never)"}
    )
    key_publish_ahead_seconds: int = field(
        default=600,
        metadata={
            "doc": "a new key is in JWKS this long before it signs (at least "
            "max(jwks_max_age_seconds, 30) + 5 + clock_skew_seconds)"
        },
    )
    jwks_max_age_seconds: int = field(
        default=300, metadata={"doc": "Cache-Control max-age of the JWKS"}
    )
    registration: str = field(
        default="admin", metadata={"doc": "POST /users: 'open' or 'admin' (admin token only)"}
    )
    admin_token: str = field(
        default="", metadata={"doc": "Bearer secret for admin endpoints (>= 32 bytes)"}
    )
    introspection_secret: str = field(
        default="", metadata={"doc": "Bearer secret resource servers use for /introspect"}
    )
    feed_token: str = field(
        default="", metadata={"doc": "Bearer secret GET /revocations requires (unset: open)"}
    )
    cookie_mode: bool = field(
        default=False, metadata={"doc": "also issue tokens as HttpOnly cookies, with CSRF"}
    )
    cookie_secure: bool = field(
        default=True, metadata={"doc": "mark cookies Secure (turn off only for plain-HTTP dev)"}
    )
    cookie_samesite: str = field(default="strict", metadata={"doc": "strict or lax"})
    dpop: str = field(
        default="optional",
        metadata={
            "doc": "DPoP (RFC 9449) at /login and /token/refresh: 'optional' (a proof binds "
            "the session to the client's key) or 'required' (no proof: 400)"
        },
    )
    dpop_nonce: bool = field(
        default=False,
        metadata={
            "doc": "require a server nonce (DPoP-Nonce, RFC 9449 §8) in token-endpoint proofs"
        },
    )
    dpop_nonce_seconds: float = field(
        default=300.0,
        metadata={"doc": "the DPoP nonce changes this often; a nonce works for 1 to 2 of these"},
    )
    dpop_iat_window_seconds: float = field(
        default=60.0,
        metadata={"doc": "how old a DPoP proof may be (its jti is remembered this long + 5 s)"},
    )
    include_email_claim: bool = field(
        default=False, metadata={"doc": "put the user's email in access tokens (personal data)"}
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata={
            "doc": "proxy addresses or CIDRs whose X-Forwarded-For/-Proto are believed "
            "(comma-separated; unset: the peer address is the client)"
        },
    )
    login_max_failures_per_account: int = field(
        default=5, metadata={"doc": "failed logins per account per window before 429"}
    )
    login_max_failures_per_address: int = field(
        default=20, metadata={"doc": "failed logins per client address per window before 429"}
    )
    login_window_seconds: int = field(
        default=900, metadata={"doc": "throttling window for failed logins"}
    )
    argon2_time_cost: int = field(default=3, metadata={"doc": "argon2id iterations"})
    argon2_memory_kib: int = field(default=65536, metadata={"doc": "argon2id memory (KiB)"})
    argon2_parallelism: int = field(default=4, metadata={"doc": "argon2id lanes"})
    redis_url: str = field(
        default="",
        metadata={"doc": "redis://... to publish the revocation feed and count failed logins"},
    )
    revocation_max_entries: int = field(
        default=1_000_000,
        metadata={
            "doc": "live revocation entries held in memory; past it tokens get 503 until "
            "the entries not held expire (docs/revocation.md)"
        },
    )
    feed_poll_seconds: float = field(
        default=0.02,
        metadata={
            "doc": "how often each process reads revocations other processes stored "
            "(other workers and instances): the bound on their propagation without Redis"
        },
    )
    heartbeat_seconds: float = field(
        default=1.0, metadata={"doc": "revocation feed heartbeat interval"}
    )
    log_level: str = field(default="info", metadata={"doc": "debug, info, warning, error"})
    max_body_bytes: int = field(
        default=65536, metadata={"doc": "largest request body accepted; larger ones get 413"}
    )
    max_header_bytes: int = field(
        default=16384,
        metadata={"doc": "largest request line + headers accepted; larger ones get 431"},
    )
    max_header_count: int = field(
        default=100, metadata={"doc": "most request headers accepted; more get 431"}
    )

    def __post_init__(self) -> None:
        if not self.issuer:
            object.__setattr__(self, "issuer", f"http://{self.host}:{self.port}")
        object.__setattr__(self, "issuer", self.issuer.rstrip("/"))
        _check(self)

    @property
    def hs256(self) -> bool:
        """True in shared-secret mode: nothing is published in JWKS."""
        return self.algorithm == "HS256"

    @property
    def issuer_path(self) -> str:
        """The issuer's path ("" or "/tenant"): the public prefix of every advertised URL."""
        return urlsplit(self.issuer).path

    @property
    def served_path(self) -> str:
        """The path prefix requests arrive with: ``root_path``, by default the issuer's path,
        "" for "/" (a proxy that strips the prefix)."""
        if not self.root_path:
            return self.issuer_path
        return self.root_path.rstrip("/")


# A remote verifier that misses a kid refetches the JWKS at most once per cooldown: 30 s in
# node jose's createRemoteJWKSet, PyJWT's PyJWKClient and jotkit's RemoteJWKS. One that honours
# Cache-Control refetches after max-age. Running servers reload the key table every 5 s.
KID_MISS_COOLDOWN_SECONDS = 30
KEY_RELOAD_SECONDS = 5


def min_publish_ahead(settings: Settings) -> int:
    """The shortest time a new key must be published before it signs so that no remote
    verifier refuses a token it signs: the longest a verifier may hold a JWKS without the key
    (its max-age, or a kid-miss cooldown), plus the time running instances take to load the
    key and the clock skew between them."""
    held = max(settings.jwks_max_age_seconds, KID_MISS_COOLDOWN_SECONDS)
    return held + KEY_RELOAD_SECONDS + settings.clock_skew_seconds


_MAX_NUMBER = 10 * 365 * 86400  # ten years in seconds: the bound of every numeric setting


def _check(settings: Settings) -> None:
    for setting in fields(settings):
        value = getattr(settings, setting.name)
        if type(value) in (int, float) and not 0 <= value <= _MAX_NUMBER:
            # Negative times and counts mean nothing; past ten years a time is a typo, and
            # some (exp = now + ttl) would no longer fit the integers JSON carries.
            raise ConfigError(f"JOTKIT_{setting.name.upper()} must be between 0 and {_MAX_NUMBER}")
    if settings.port > 65535:
        raise ConfigError("JOTKIT_PORT must be between 0 and 65535")
    if not (1 <= settings.argon2_parallelism <= 64 and settings.argon2_time_cost >= 1):
        raise ConfigError("JOTKIT_ARGON2_PARALLELISM must be 1-64, JOTKIT_ARGON2_TIME_COST >= 1")
    if not 8 * settings.argon2_parallelism <= settings.argon2_memory_kib <= 4 * 1024 * 1024:
        raise ConfigError(
            "JOTKIT_ARGON2_MEMORY_KIB must be between 8 x JOTKIT_ARGON2_PARALLELISM and 4 GiB"
        )
    if settings.algorithm != "HS256" and settings.algorithm not in _ASYMMETRIC_ALGORITHMS:
        raise ConfigError(
            f"JOTKIT_ALGORITHM={settings.algorithm!r} is not supported; "
            f"use one of {', '.join((*_ASYMMETRIC_ALGORITHMS, 'HS256'))}"
        )
    if settings.hs256 and len(settings.hs256_secret.encode()) < 32:
        raise ConfigError("HS256 mode needs JOTKIT_HS256_SECRET of at least 32 bytes")
    for name in ("master_key", "admin_token", "introspection_secret", "feed_token"):
        value = getattr(settings, name)
        if value and len(value.encode()) < 32:
            raise ConfigError(f"JOTKIT_{name.upper()} must be at least 32 bytes")
    if settings.registration not in ("open", "admin"):
        raise ConfigError("JOTKIT_REGISTRATION must be 'open' or 'admin'")
    if settings.dpop not in ("optional", "required"):
        raise ConfigError("JOTKIT_DPOP must be 'optional' or 'required'")
    if settings.cookie_samesite not in ("strict", "lax"):
        raise ConfigError("JOTKIT_COOKIE_SAMESITE must be 'strict' or 'lax'")
    if not settings.audiences:
        raise ConfigError("JOTKIT_AUDIENCES must name at least one audience")
    positive = (
        "access_ttl_seconds",
        "refresh_idle_ttl_seconds",
        "refresh_absolute_ttl_seconds",
        "max_body_bytes",
        "max_header_bytes",
        "max_header_count",
        "heartbeat_seconds",
        "feed_poll_seconds",
        "login_window_seconds",
        "database_pool_connections",
        "workers",
        "keep_alive_timeout_seconds",
        "revocation_max_entries",
        "dpop_nonce_seconds",
        "dpop_iat_window_seconds",
    )
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"JOTKIT_{name.upper()} must be positive")
    if settings.database_pool_connections > 1000 or settings.workers > 256:
        raise ConfigError(
            "JOTKIT_DATABASE_POOL_CONNECTIONS must be at most 1000 and JOTKIT_WORKERS at most 256"
        )
    if not settings.database_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ConfigError("JOTKIT_DATABASE_URL must be sqlite:///... or postgresql://...")
    _check_url(
        "database_url", settings.database_url, ("sqlite", "postgresql", "postgresql+psycopg")
    )
    _check_url("issuer", settings.issuer, ("http", "https"), needs_host=True)
    if urlsplit(settings.issuer).query or urlsplit(settings.issuer).fragment:
        raise ConfigError("JOTKIT_ISSUER must have no query or fragment (RFC 8414 §2)")
    if settings.root_path and not (
        settings.root_path.startswith("/")
        and settings.root_path.isprintable()
        and not any(c in settings.root_path for c in "?#% ")
    ):
        raise ConfigError("JOTKIT_ROOT_PATH must be a path such as /tenant, or / for none")
    if not settings.hs256 and settings.key_publish_ahead_seconds < min_publish_ahead(settings):
        raise ConfigError(
            f"JOTKIT_KEY_PUBLISH_AHEAD_SECONDS={settings.key_publish_ahead_seconds} is too "
            f"short: remote verifiers hold a key set for up to max(JWKS max-age, "
            f"{KID_MISS_COOLDOWN_SECONDS} s kid-miss cooldown), so tokens a new key signs "
            f"sooner would be refused; at least {min_publish_ahead(settings)} s with these "
            "settings (docs/lifecycle.md)"
        )
    if settings.redis_url:
        _check_url("redis_url", settings.redis_url, ("redis", "rediss", "unix"))
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"JOTKIT_TRUSTED_PROXIES: {proxy!r} is not an IP address or CIDR network"
            ) from None


def _check_url(name: str, url: str, schemes: tuple[str, ...], *, needs_host: bool = False) -> None:
    """A URL setting must parse (brackets, port) and be printable, so that a typo is one
    ERR_CONFIG line at start, not a traceback from the library that first reads it."""
    try:
        if not url.isprintable():  # urlsplit would silently drop a newline or a tab
            raise ValueError("it holds a control character")
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: ValueError when out of range
    except ValueError as exc:
        raise ConfigError(f"JOTKIT_{name.upper()} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes or (needs_host and not parts.hostname):
        raise ConfigError(
            f"JOTKIT_{name.upper()} must be a {' or '.join(s + '://' for s in schemes)} URL"
        )


def _convert(name: str, kind: Any, raw: Any) -> Any:
    try:
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return text in ("1", "true", "yes", "on")
        if kind in (int, "int"):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)  # TOML's 20001.9 or inf is no port
            return int(raw)
        if kind in (float, "float"):
            if isinstance(raw, bool) or not math.isfinite(value := float(raw)):
                raise ValueError(raw)
            return value
        if kind in (tuple[str, ...], "tuple[str, ...]"):
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return str(raw)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"setting {name} (JOTKIT_{name.upper()}): bad value {raw!r}") from None


def load_settings(
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from the TOML file, then JOTKIT_* variables, then ``overrides``."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("JOTKIT_CONFIG") or None
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(Settings)}
    if config_file:
        try:
            with open(config_file, "rb") as handle:
                document = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
            # tomllib lets bad UTF-8 and deep nesting out as their own errors.
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        for name, raw in document.items():
            if name not in known:
                raise ConfigError(f"config file {config_file}: unknown setting {name!r}")
            values[name] = _convert(name, known[name], raw)
    for name, kind in known.items():
        raw = environ.get(f"JOTKIT_{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _convert(name, kind, raw)
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _convert(name, known[name], raw)
    return Settings(**values)


def describe() -> str:
    """One line per setting: TOML name, environment variable, default, meaning."""
    lines = []
    for spec in fields(Settings):
        default: Any = spec.default
        if default is dataclasses.MISSING:
            default = "<data dir>/jotkit.db" if spec.name == "database_url" else ""
        if isinstance(default, tuple):
            default = ",".join(default)
        if spec.name.endswith(("secret", "key", "token")):
            default = "(unset)"
        lines.append(
            f"{spec.name} / JOTKIT_{spec.name.upper()} [{default}]: {spec.metadata['doc']}"
        )
    return "\n".join(lines)
