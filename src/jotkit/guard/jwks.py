"""The issuer's JSON Web Key Set, fetched over HTTP and held in memory (RFC 7517 §5).

Policy, in the order it matters for a resource server:

- the steady state makes no network call: the set is fresh for the response's
  ``Cache-Control: max-age`` clamped to [``min_max_age_seconds``, ``max_max_age_seconds``],
  and when that runs out a refresh starts in a background thread while requests go on being
  verified with the set held;
- a token naming an unknown ``kid`` (the issuer rotated its key) triggers one refetch, at most
  one per ``unknown_kid_cooldown_seconds``: a flood of forged kids costs the issuer nothing;
- when the issuer cannot be reached the last good set keeps serving for
  ``max_stale_seconds`` past its freshness, then every verification fails with
  ``ERR_JWKS_UNAVAILABLE`` (503) until a fetch succeeds;
- with no URL, the ``jwks_uri`` comes from the issuer's RFC 8414 metadata
  (``https://host/.well-known/oauth-authorization-server/path`` for ``https://host/path``),
  or, where that answers 404, from ``{issuer}/.well-known/oauth-authorization-server`` or
  ``{issuer}/.well-known/openid-configuration`` (an OpenID Provider's); the document's
  ``issuer`` must be exactly ours (RFC 8414 §3.3).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from jotkit.guard.errors import JWKSUnavailable
from jotkit.jose.errors import JoseError
from jotkit.jose.keyset import KeySet

__all__ = ["RemoteJWKS", "discover_jwks_uri", "download", "metadata_url"]

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)(?:$|[,\s])", re.IGNORECASE)
_MAX_DOCUMENT_BYTES = 512 * 1024  # a JWKS or a discovery document; anything bigger is wrong


def download(
    client: httpx.Client, url: str, headers: dict[str, str], deadline_seconds: float
) -> tuple[httpx.Response, bytes]:
    """GET ``url``: the response and, for a 200, its body, at most _MAX_DOCUMENT_BYTES of it
    and all within ``deadline_seconds``. httpx's timeout bounds each read, not the answer: an
    issuer trickling a byte a second, or sending a gigabyte, would otherwise hold the caller
    (and every request queued behind the fetch) for ever, or fill its memory."""
    deadline = time.monotonic() + deadline_seconds
    body = bytearray()
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 200:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_DOCUMENT_BYTES:
                    raise JWKSUnavailable(f"GET {url} answered over {_MAX_DOCUMENT_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise JWKSUnavailable(f"GET {url} took over {deadline_seconds:g} s")
    return response, bytes(body)


class _NotFound(JWKSUnavailable):
    """A well-known document that is not there (HTTP 404): the next location may be."""


def _get_json(client: httpx.Client, url: str, deadline_seconds: float) -> Any:
    response, body = download(client, url, {"Accept": "application/json"}, deadline_seconds)
    if response.status_code == 404:
        raise _NotFound(f"GET {url} answered HTTP 404")
    if response.status_code != 200:
        raise JWKSUnavailable(f"GET {url} answered HTTP {response.status_code}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JWKSUnavailable(f"GET {url} did not answer JSON") from None


def metadata_url(issuer: str, suffix: str = "oauth-authorization-server") -> str:
    """Where ``issuer``'s RFC 8414 metadata lives: "/.well-known/" + ``suffix`` inserted
    between the host and the issuer's path (RFC 8414 §3.1), so that several issuers on one
    host each have their own document."""
    parts = urlsplit(issuer)
    path = f"/.well-known/{suffix}{parts.path.rstrip('/')}"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def discover_jwks_uri(client: httpx.Client, issuer: str, deadline_seconds: float = 10.0) -> str:
    """The ``jwks_uri`` of ``issuer``'s metadata: the first of its RFC 8414 location, the
    same document appended to the issuer (a proxy may route only the issuer's path) and its
    OpenID configuration that does not answer 404. The document's ``issuer`` must match, and
    an https issuer's keys must come over https too."""
    base = issuer.rstrip("/")
    locations = dict.fromkeys(
        (
            metadata_url(issuer),
            f"{base}/.well-known/oauth-authorization-server",
            f"{base}/.well-known/openid-configuration",
        )
    )
    for url in locations:
        try:
            document = _get_json(client, url, deadline_seconds)
            break
        except _NotFound:
            continue
    else:
        raise JWKSUnavailable(f"no metadata for {issuer}: 404 at {', '.join(locations)}")
    if not isinstance(document, dict):
        raise JWKSUnavailable(f"{url} is not a JSON object")
    if document.get("issuer") != issuer:
        # A document for another issuer would make us trust its keys for ours.
        raise JWKSUnavailable(
            f"{url} names issuer {str(document.get('issuer'))[:100]!r}, expected {issuer!r}"
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise JWKSUnavailable(f"{url} has no http(s) jwks_uri")
    if issuer.startswith("https://") and not jwks_uri.startswith("https://"):
        # Keys fetched in clear text can be swapped by anyone on the path.
        raise JWKSUnavailable(f"{url} sends an https issuer's keys over plain http")
    try:
        httpx.URL(jwks_uri)
    except httpx.InvalidURL:
        raise JWKSUnavailable(f"{url} names a jwks_uri that is not a valid URL") from None
    return jwks_uri


class RemoteJWKS:
    """A remote key set with the caching policy of the module docstring.

    ``subscribe(callback)`` is told every new KeySet (a Guard swaps its Verifier's keys).
    ``monotonic`` is the clock for every interval here.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        issuer: str | None = None,
        timeout_seconds: float = 5.0,
        default_max_age_seconds: float = 300,
        min_max_age_seconds: float = 30,
        max_max_age_seconds: float = 3600,
        unknown_kid_cooldown_seconds: float = 30,
        retry_seconds: float = 10,
        max_stale_seconds: float = 6 * 3600,
        client: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing is fetched here: on ``refresh()`` or the first verification."""
        if url is None and issuer is None:
            raise ValueError("RemoteJWKS needs a url or an issuer to discover it from")
        self.url = url
        self.issuer = issuer
        self.default_max_age_seconds = default_max_age_seconds
        self.min_max_age_seconds = min_max_age_seconds
        self.max_max_age_seconds = max_max_age_seconds
        self.unknown_kid_cooldown_seconds = unknown_kid_cooldown_seconds
        self.retry_seconds = retry_seconds
        self.max_stale_seconds = max_stale_seconds
        self._monotonic = monotonic
        self.deadline_seconds = 2 * timeout_seconds  # a whole answer, however it trickles
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[KeySet], None]] = []
        self.keys: KeySet | None = None
        self._document: bytes | None = None
        self._etag: str | None = None
        # Until _fresh_until nothing happens per request; until _usable_until the set serves.
        self._fresh_until = -float("inf")
        self._usable_until = -float("inf")
        self._last_attempt = -float("inf")
        self._last_unknown_kid_fetch = -float("inf")
        self._refreshing = False
        self.last_error: str | None = None
        self.fetches = 0  # successful and failed GETs of the key set, for tests and metrics

    def subscribe(self, callback: Callable[[KeySet], None]) -> None:
        """Call ``callback(keys)`` now (if loaded) and whenever the set changes."""
        self._listeners.append(callback)
        if self.keys is not None:
            callback(self.keys)

    def close(self) -> None:
        """Close the HTTP client (if this object made it)."""
        if self._own_client:
            self._client.close()

    # -- the per-request check ----------------------------------------------------------

    def check(self) -> None:
        """Per request: nothing while fresh; start a background refresh when due; raise
        JWKSUnavailable once the held set is past its stale limit."""
        now = self._monotonic()
        if now < self._fresh_until:
            return
        if self.keys is None:
            return  # nothing loaded: the first verification's KeyNotFound fetches (cooldown)
        if not self._refreshing and now - self._last_attempt >= self.retry_seconds:
            self._refreshing = True
            threading.Thread(target=self._refresh_in_background, daemon=True).start()
        if now >= self._usable_until:
            raise JWKSUnavailable(
                f"the key set of {self.url or self.issuer} is "
                f"{now - self._fresh_until:.0f} s past its max-age and past the stale limit "
                f"({self.max_stale_seconds:g} s); last error: {self.last_error}"
            )

    def _refresh_in_background(self) -> None:
        try:
            self._refresh_locked()
        except JoseError:
            pass  # recorded in last_error; the held set serves until its stale limit
        finally:
            self._refreshing = False

    def refresh_for_unknown_kid(self) -> bool:
        """Refetch because a token names a kid we lack; True when the set changed.

        At most one fetch per ``unknown_kid_cooldown_seconds`` (concurrent callers wait for
        the one fetch). Raises JWKSUnavailable when no set has ever been loaded.
        """
        with self._lock:
            now = self._monotonic()
            if self.keys is None:
                # Nothing loaded yet: this is the first load, retried every retry_seconds.
                due = now - self._last_attempt >= self.retry_seconds
            else:
                due = now - self._last_unknown_kid_fetch >= self.unknown_kid_cooldown_seconds
            if not due:
                changed = False
            else:
                if self.keys is not None:
                    self._last_unknown_kid_fetch = now
                before = self.keys
                with contextlib.suppress(JoseError):  # recorded in last_error
                    self._refresh_unlocked()
                changed = self.keys is not before
        if self.keys is None:
            raise JWKSUnavailable(
                f"no key set loaded from {self.url or self.issuer} yet; "
                f"last error: {self.last_error}"
            )
        return changed

    # -- fetching -------------------------------------------------------------------------

    def refresh(self) -> KeySet:
        """Fetch the set now (blocking); JWKSUnavailable when it cannot be had."""
        return self._refresh_locked()

    def _refresh_locked(self) -> KeySet:
        with self._lock:
            return self._refresh_unlocked()

    def _refresh_unlocked(self) -> KeySet:
        self._last_attempt = self._monotonic()
        try:
            return self._fetch()
        except JWKSUnavailable as exc:
            self.last_error = str(exc)
            raise
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, JoseError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            raise JWKSUnavailable(
                f"cannot fetch the key set of {self.url or self.issuer}: {self.last_error}"
            ) from None

    def _fetch(self) -> KeySet:
        if self.url is None:
            assert self.issuer is not None
            self.url = discover_jwks_uri(self._client, self.issuer, self.deadline_seconds)
        self.fetches += 1
        headers = {"Accept": "application/jwk-set+json, application/json"}
        if self._etag is not None and self.keys is not None:
            headers["If-None-Match"] = self._etag
        response, document = download(self._client, self.url, headers, self.deadline_seconds)
        if response.status_code == 304 and self.keys is not None:
            self._mark_fresh(response)
            return self.keys
        if response.status_code != 200:
            raise JWKSUnavailable(f"GET {self.url} answered HTTP {response.status_code}")
        if self.keys is not None and document == self._document:
            self._mark_fresh(response)
            return self.keys  # unchanged: keep the Verifier's cache warm
        keys = KeySet.from_jwks(document, public_only=True)
        if not any(key.can("verify") for key in keys):
            raise JWKSUnavailable(f"the key set at {self.url} has no usable signature key")
        self.keys, self._document = keys, document
        self._etag = response.headers.get("ETag")
        self._mark_fresh(response)
        for listener in self._listeners:
            listener(keys)
        return keys

    def _mark_fresh(self, response: httpx.Response) -> None:
        self.last_error = None
        cache_control = response.headers.get("Cache-Control", "")
        match = _MAX_AGE.search(cache_control)
        if match is not None:
            max_age = float(match.group(1))
        elif _NO_CACHE.search(cache_control):
            max_age = 0
        else:
            max_age = self.default_max_age_seconds
        max_age = min(max(max_age, self.min_max_age_seconds), self.max_max_age_seconds)
        now = self._monotonic()
        self._fresh_until = now + max_age
        self._usable_until = self._fresh_until + self.max_stale_seconds

    @property
    def seconds_until_refresh(self) -> float:
        """Seconds until the held set is due for a refresh (negative: overdue)."""
        return self._fresh_until - self._monotonic()
