"""`jotkit token sign`: test tokens, with jwt.sign's refusals as errors with codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _cli_helpers import invoke

from jotkit.jose import Key, KeySet, jwt

SECRET = "an HMAC secret long enough for HS512: sixty-four bytes, or more!"


def signed_claims(key: Key, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = invoke("token", "sign", *args, env=env)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    _, claims = jwt.peek(token)
    assert jwt.verify(token, key, audience=claims.get("aud"), require=()) == claims
    return claims


def test_sign_makes_a_token_that_verifies(es256_key: Key, key_files: dict[str, Path]) -> None:
    claims = signed_claims(
        es256_key, "--key", str(key_files["private.pem"]),
        "--sub", "alice", "--iss", "https://auth.example", "--aud", "api", "--exp", "15m",
    )  # fmt: skip
    assert claims["sub"] == "alice"
    assert claims["iss"] == "https://auth.example"
    assert claims["aud"] == "api"
    assert claims["exp"] - claims["iat"] == 900


def test_sign_puts_registered_claims_first(es256_key: Key, key_files: dict[str, Path]) -> None:
    claims = signed_claims(
        es256_key, "--key", str(key_files["private.pem"]), "--claim", "role=admin",
        "--exp", "1m", "--sub", "a", "--iss", "i",
    )  # fmt: skip
    assert list(claims) == ["iss", "sub", "exp", "iat", "role"]


@pytest.mark.parametrize(
    ("duration", "seconds"), [("30s", 30), ("45", 45), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_sign_exp_takes_durations(
    es256_key: Key, key_files: dict[str, Path], duration: str, seconds: int
) -> None:
    claims = signed_claims(es256_key, "--key", str(key_files["private.jwk"]), "--exp", duration)
    assert claims["exp"] - claims["iat"] == seconds


@pytest.mark.parametrize("duration", ["15 minutes", "-5m", "1w", ""])
def test_sign_bad_duration_is_a_usage_error(key_files: dict[str, Path], duration: str) -> None:
    result = invoke("token", "sign", "--key", str(key_files["private.pem"]), "--exp", duration)
    assert result.exit_code == 2
    assert "is not a duration like 30s, 15m, 2h or 1d" in result.stderr


def test_sign_claim_values_are_json_when_they_parse_else_strings(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    claims = signed_claims(
        es256_key, "--key", str(key_files["private.pem"]), "--exp", "1m",
        "--claim", "n=5", "--claim", "admin=true", "--claim", 'roles=["a","b"]',
        "--claim", "name=alice", "--claim", 'quoted="5"', "--claim", "empty=",
        "--claim", "ratio=0.5", "--claim", "nothing=null", "--claim", "eq=a=b",
    )  # fmt: skip
    assert claims["n"] == 5
    assert claims["admin"] is True
    assert claims["roles"] == ["a", "b"]
    assert claims["name"] == "alice"
    assert claims["quoted"] == "5"
    assert claims["empty"] == ""
    assert claims["ratio"] == 0.5
    assert claims["nothing"] is None
    assert claims["eq"] == "a=b"


def test_sign_claim_without_equals_is_a_usage_error(key_files: dict[str, Path]) -> None:
    result = invoke("token", "sign", "--key", str(key_files["private.pem"]), "--claim", "admin")
    assert result.exit_code == 2
    assert "'admin' is not NAME=VALUE" in result.stderr


def test_sign_same_claim_twice_is_a_usage_error(key_files: dict[str, Path]) -> None:
    result = invoke(
        "token", "sign", "--key", str(key_files["private.pem"]), "--exp", "1m",
        "--sub", "a", "--claim", "sub=b",
    )  # fmt: skip
    assert result.exit_code == 2
    assert 'claim "sub" is given twice' in result.stderr


@pytest.mark.parametrize("name", ["password", "client_secret", "api_key", "API-KEY"])
def test_sign_refuses_secret_named_claims_with_their_code(
    key_files: dict[str, Path], name: str
) -> None:
    result = invoke(
        "token", "sign", "--key", str(key_files["private.pem"]), "--exp", "1m",
        "--claim", f"{name}=hunter2",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: ERR_JWT_SECRET_CLAIM: refusing to put [{name!r}] in a JWT: its payload is "
        "readable by anyone who holds it\n"
    )


def test_sign_refuses_a_token_without_exp(key_files: dict[str, Path]) -> None:
    result = invoke("token", "sign", "--key", str(key_files["private.pem"]), "--sub", "a")
    assert result.exit_code == 1
    assert result.stderr == (
        'error: ERR_JWT_MISSING_EXP: refusing to sign a JWT without "exp": it would never '
        "expire (give --exp 15m, or --allow-no-exp if you mean it)\n"
    )


def test_sign_allow_no_exp_signs_a_token_that_never_expires(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    claims = signed_claims(es256_key, "--key", str(key_files["private.pem"]), "--allow-no-exp")
    assert "exp" not in claims


def test_sign_refuses_a_non_numeric_exp_claim(key_files: dict[str, Path]) -> None:
    result = invoke(
        "token", "sign", "--key", str(key_files["private.pem"]), "--claim", "exp=tomorrow"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ERR_JWT_INVALID_EXP: ")


@pytest.mark.parametrize("file", ["public.pem", "public.jwk", "jwks.json"])
def test_sign_with_a_public_key_is_refused(key_files: dict[str, Path], file: str) -> None:
    result = invoke("token", "sign", "--key", str(key_files[file]), "--exp", "1m")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_KEY_NOT_PRIVATE: ")


def test_sign_with_an_algorithm_the_key_does_not_allow_is_refused(
    key_files: dict[str, Path],
) -> None:
    result = invoke(
        "token", "sign", "--key", str(key_files["private.pem"]), "--exp", "1m", "--alg", "RS256"
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: ERR_JOSE_ALG_NOT_ALLOWED: algorithm RS256 is not allowed for an EC key on P-256\n"
    )


def test_sign_pem_key_gets_its_thumbprint_as_kid(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    result = invoke("token", "sign", "--key", str(key_files["private.pem"]), "--exp", "1m")
    header, _ = jwt.peek(result.stdout.strip())
    assert header["kid"] == es256_key.thumbprint()


def test_sign_kid_and_typ_options_set_the_header(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    result = invoke(
        "token", "sign", "--key", str(key_files["private.pem"]), "--exp", "1m",
        "--kid", "key-2026", "--typ", "at+jwt",
    )  # fmt: skip
    header, _ = jwt.peek(result.stdout.strip())
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": "key-2026"}


def test_sign_picks_the_key_of_a_jwks_file_by_kid(tmp_path: Path) -> None:
    first, second = Key.generate("ES256", kid="one"), Key.generate("EdDSA", kid="two")
    path = tmp_path / "private-jwks.json"
    path.write_bytes(orjson.dumps(KeySet([first, second]).to_jwks(private=True)))
    result = invoke("token", "sign", "--key", str(path), "--kid", "two", "--exp", "1m")
    assert result.exit_code == 0, result.output
    assert jwt.verify(result.stdout.strip(), second.public())["iat"] > 0
    ambiguous = invoke("token", "sign", "--key", str(path), "--exp", "1m")
    assert ambiguous.exit_code == 2
    assert ambiguous.stderr.startswith("error: ERR_KEY_AMBIGUOUS: ")


def test_sign_with_an_hmac_secret_from_the_environment() -> None:
    claims = signed_claims(
        Key.from_secret(SECRET.encode(), alg="HS512"),
        "--secret-env", "JWT_SECRET", "--alg", "HS512", "--exp", "5m",
        env={"JWT_SECRET": SECRET},
    )  # fmt: skip
    assert claims["exp"] - claims["iat"] == 300


def test_sign_with_an_hmac_secret_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET)
    claims = signed_claims(
        Key.from_secret(SECRET.encode()), "--secret-file", str(tmp_path / "secret"), "--exp", "1m"
    )
    assert "exp" in claims


def test_sign_needs_exactly_one_key_source() -> None:
    result = invoke("token", "sign", "--exp", "1m")
    assert result.exit_code == 2
    assert "give exactly one of --key, --secret-file, --secret-env" in result.stderr
