"""The ``jotkit`` command line."""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from jotkit.jose import ALGORITHMS, JoseError, Key, jwt

__all__ = ["main"]


def _demo(alg: str) -> int:
    """Generate a key, sign an access-token-shaped JWT, verify it, and show a refusal."""
    key = Key.generate(alg)
    now = int(time.time())
    claims = {"iss": "https://auth.example", "sub": "user-1", "aud": "api", "iat": now}
    token = jwt.sign({**claims, "exp": now + 900}, key, header={"typ": "at+jwt"})
    verifier_key = key if key.kty == "oct" else key.public()
    print(f"key:    {key!r}")
    print(f"token:  {token}")
    verified = jwt.verify(
        token, verifier_key, issuer="https://auth.example", audience="api", typ="at+jwt"
    )
    print("claims: " + orjson.dumps(verified).decode())
    try:
        jwt.verify(token, verifier_key, issuer="https://auth.example", audience="other")
    except JoseError as exc:
        print(f"wrong audience refused: {exc.code}: {exc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jotkit`` console script."""
    parser = argparse.ArgumentParser(prog="jotkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="sign and verify a token with a fresh key")
    demo.add_argument("--alg", default="ES256", choices=sorted(ALGORITHMS))
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.alg)
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
