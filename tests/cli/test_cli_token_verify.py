"""`jotkit token verify`: the full verdict of jwt.verify, exit 0 (valid) or 1 (invalid)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import Answer, forge, http_server, invoke, sign

from jotkit.jose import Key, KeySet, jwt

SECRET = "an HMAC secret long enough for HS512: sixty-four bytes, or more!"


def verdict(*args: str, input: str | None = None) -> tuple[int, str]:
    result = invoke("token", "verify", *args, input=input)
    return result.exit_code, result.stdout.splitlines()[0] if result.stdout else result.stderr


@pytest.mark.parametrize(
    "file", ["public.pem", "private.pem", "public.jwk", "private.jwk", "jwks.json"]
)
def test_verify_accepts_pem_jwk_and_jwks_key_files(
    es256_key: Key, key_files: dict[str, Path], file: str
) -> None:
    result = invoke("token", "verify", sign(es256_key), "--key", str(key_files[file]))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("valid: ES256 signature (kid ")
    assert '"sub": "alice"' in result.stdout


def test_verify_valid_token_prints_valid_and_its_claims_with_times(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    token = sign(es256_key, lifetime=12 * 60 + 20, aud="api", iss="https://auth.example")
    result = invoke(
        "token", "verify", token, "--key", str(key_files["public.pem"]),
        "--aud", "api", "--iss", "https://auth.example", "--typ", "JWT", "--alg", "ES256",
    )  # fmt: skip
    assert result.exit_code == 0
    assert "anyone holding this token can read it" in result.stdout
    assert '"iss": "https://auth.example"' in result.stdout
    assert "expires in 12 min" in result.stdout


def test_verify_expired_token_names_the_rule_and_its_code(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    now = int(time.time())
    token = sign(es256_key, iat=now - 3600, exp=now - 3 * 60 - 10)
    code, line = verdict(token, "--key", str(key_files["public.pem"]))
    assert code == 1
    assert line.startswith("INVALID: ERR_JWT_EXPIRED: token expired 3 min ago (exp=")


def test_verify_leeway_accepts_a_token_just_expired(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    now = int(time.time())
    token = sign(es256_key, iat=now - 600, exp=now - 30)
    assert verdict(token, "--key", str(key_files["public.pem"]), "--leeway", "5m")[0] == 0


def test_verify_max_age_refuses_an_old_token(es256_key: Key, key_files: dict[str, Path]) -> None:
    token = sign(es256_key, iat=int(time.time()) - 3 * 3600)
    code, line = verdict(token, "--key", str(key_files["public.pem"]), "--max-age", "1h")
    assert code == 1
    assert line.startswith("INVALID: ERR_JWT_MAX_AGE_EXCEEDED: token is 3 h old, over max_age")


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (["--aud", "other"], "INVALID: ERR_JWT_INVALID_AUD: token audience 'api' is not ours"),
        ([], "INVALID: ERR_JWT_INVALID_AUD: token is for audience 'api' but no expected"),
        (["--aud", "api", "--iss", "https://other"], "INVALID: ERR_JWT_INVALID_ISS: unexpected"),
        (["--aud", "api", "--sub", "bob"], "INVALID: ERR_JWT_INVALID_SUB: unexpected subject"),
        (["--aud", "api", "--typ", "at+jwt"], 'INVALID: ERR_JWT_INVALID_TYP: header "typ"'),
        (["--aud", "api", "--alg", "RS256"], "INVALID: ERR_JOSE_ALG_NOT_ALLOWED: algorithm"),
    ],
)
def test_verify_policy_failure_names_the_rule(
    es256_key: Key, key_files: dict[str, Path], options: list[str], line: str
) -> None:
    token = sign(es256_key, aud="api", iss="https://auth.example")
    code, first = verdict(token, "--key", str(key_files["public.pem"]), *options)
    assert code == 1
    assert first.startswith(line)


def test_verify_signature_from_another_key_is_invalid(tmp_path: Path) -> None:
    signer, other = Key.generate("ES256"), Key.generate("ES256", kid=None)
    other.kid = None  # a bare PEM-like key: no kid to refuse on, the signature decides
    (tmp_path / "other.pem").write_bytes(other.to_pem())
    code, line = verdict(sign(signer), "--key", str(tmp_path / "other.pem"))
    assert code == 1
    assert line == "INVALID: ERR_JWS_SIGNATURE_INVALID: ES256 signature does not verify"


def test_verify_token_with_unknown_kid_against_a_jwks_is_invalid(
    key_files: dict[str, Path],
) -> None:
    code, line = verdict(sign(Key.generate("ES256")), "--key", str(key_files["jwks.json"]))
    assert code == 1
    assert line.startswith("INVALID: ERR_JWKS_NO_MATCHING_KEY: no key in the set for kid")


def test_verify_alg_none_token_is_invalid_and_warned(key_files: dict[str, Path]) -> None:
    token = forge({"alg": "none"}, {"sub": "x", "exp": int(time.time()) + 60}, signature="")
    result = invoke("token", "verify", token, "--key", str(key_files["public.pem"]))
    assert result.exit_code == 1
    assert result.stdout.startswith('INVALID: ERR_JOSE_ALG_UNSUPPORTED: alg "none"')
    assert "warning: WARN_ALG_NONE" in result.stdout


def test_verify_malformed_token_is_invalid_exit_1(key_files: dict[str, Path]) -> None:
    code, line = verdict("a.b", "--key", str(key_files["public.pem"]))
    assert code == 1
    assert line == "INVALID: ERR_JWS_MALFORMED: a compact JWS has 3 segments, this has 2"


def test_verify_non_ascii_token_is_invalid_exit_1(key_files: dict[str, Path]) -> None:
    result = invoke("token", "verify", "-", "--key", str(key_files["public.pem"]),
                    input="é.e30.c2ln".encode())  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == "INVALID: ERR_JWS_MALFORMED: a token is ASCII text\n"


def test_verify_warns_about_what_a_valid_token_carries(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    result = invoke(
        "token", "verify", sign(es256_key, lifetime=86400, phone="555"),
        "--key", str(key_files["public.pem"]),
    )  # fmt: skip
    assert result.exit_code == 0
    assert "warning: WARN_LONG_LIFETIME" in result.stdout
    assert "warning: WARN_PERSONAL_CLAIM" in result.stdout


def test_verify_reads_the_token_from_stdin(es256_key: Key, key_files: dict[str, Path]) -> None:
    code, line = verdict("-", "--key", str(key_files["public.pem"]), input=sign(es256_key))
    assert code == 0
    assert line.startswith("valid:")


def test_verify_hmac_secret_from_a_file_ignores_the_final_newline(tmp_path: Path) -> None:
    key = Key.from_secret(SECRET.encode())
    (tmp_path / "secret").write_text(SECRET + "\n")
    assert verdict(sign(key), "--secret-file", str(tmp_path / "secret"))[0] == 0


def test_verify_hmac_secret_from_an_environment_variable() -> None:
    token = sign(Key.from_secret(SECRET.encode(), alg="HS384"))
    result = invoke("token", "verify", token, "--secret-env", "JWT_SECRET",
                    env={"JWT_SECRET": SECRET})  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout.startswith("valid: HS384 signature")


def test_verify_hmac_with_the_wrong_secret_is_invalid() -> None:
    token = sign(Key.from_secret(SECRET.encode()))
    result = invoke("token", "verify", token, "--secret-env", "S", env={"S": SECRET + "x"})
    assert result.exit_code == 1
    assert result.stdout.startswith("INVALID: ERR_JWS_SIGNATURE_INVALID")


def test_verify_unset_secret_variable_is_a_usage_error() -> None:
    result = invoke("token", "verify", "a.b.c", "--secret-env", "JOTKIT_TEST_UNSET")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_SECRET_ENV_UNSET: ")


def test_verify_short_hmac_secret_is_a_usage_error() -> None:
    result = invoke("token", "verify", "a.b.c", "--secret-env", "S", env={"S": "short"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_JWK_INVALID: HMAC secret: HS256 needs a secret")


@pytest.mark.parametrize(("option", "code"), [("--iss", "ISSUER"), ("--aud", "AUDIENCE")])
def test_verify_options_that_make_no_policy_are_a_usage_error(option: str, code: str) -> None:
    # Refused when the policy is built, before the token or the key is read.
    result = invoke("token", "verify", "a.b.c", option, "", "--secret-env", "JOTKIT_TEST_UNSET")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: ERR_POLICY_{code}: ")


def test_verify_public_key_text_is_refused_as_an_hmac_secret(key_files: dict[str, Path]) -> None:
    result = invoke("token", "verify", "a.b.c", "--secret-file", str(key_files["public.pem"]))
    assert result.exit_code == 2
    assert "looks like an asymmetric key" in result.stderr


@pytest.mark.parametrize(
    "sources",
    [[], ["--key", "k.pem", "--secret-env", "S"], ["--jwks", "http://x", "--key", "k.pem"]],
)
def test_verify_needs_exactly_one_key_source(sources: list[str]) -> None:
    result = invoke("token", "verify", "a.b.c", *sources)
    assert result.exit_code == 2
    assert "give exactly one of --key, --jwks, --secret-file, --secret-env" in result.stderr


def test_verify_missing_key_file_is_exit_2(tmp_path: Path) -> None:
    result = invoke("token", "verify", "a.b.c", "--key", str(tmp_path / "nope.pem"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: ERR_FILE_UNREADABLE: cannot read key file {tmp_path / 'nope.pem'}: "
        "No such file or directory\n"
    )


def test_verify_file_that_is_no_key_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = invoke("token", "verify", "a.b.c", "--key", str(tmp_path / "notes.txt"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_JWK_INVALID: ")
    assert "not a PEM, DER, JWK or JWK Set key file" in result.stderr


def test_verify_with_jwks_url_from_a_real_http_server(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    jwks = json.dumps(KeySet([Key.generate("ES256"), es256_key.public()]).to_jwks()).encode()
    with http_server({"/.well-known/jwks.json": (200, jwks)}) as url:
        result = invoke(
            "token", "verify", sign(es256_key), "--jwks", url + "/.well-known/jwks.json"
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f'valid: ES256 signature (kid "{es256_key.kid}")')


def test_verify_with_jwks_url_never_trusts_a_published_secret(es256_key: Key) -> None:
    leaked = Key.generate("HS256", kid="leaked")
    jwks = {"keys": [es256_key.public().to_jwk(), leaked.to_jwk(private=True)]}
    forged = jwt.sign({"sub": "attacker", "exp": int(time.time()) + 600}, leaked)
    with http_server({"/jwks": (200, json.dumps(jwks).encode())}) as url:
        result = invoke("token", "verify", forged, "--jwks", url + "/jwks")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("INVALID: ")


def test_verify_jwks_url_that_answers_404_is_err_jwks_fetch(es256_key: Key) -> None:
    with http_server({}) as url:
        result = invoke("token", "verify", sign(es256_key), "--jwks", url + "/jwks.json")
    assert result.exit_code == 1
    assert result.stderr == f"error: ERR_JWKS_FETCH: GET {url}/jwks.json answered HTTP 404\n"


def test_verify_jwks_url_with_nothing_listening_is_err_jwks_fetch(es256_key: Key) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke("token", "verify", sign(es256_key), "--jwks", f"http://127.0.0.1:{port}/j")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: ERR_JWKS_FETCH: cannot fetch http://127.0.0.1:{port}")
    assert len(result.stderr.splitlines()) == 1


def test_verify_jwks_url_that_trickles_is_given_up_at_twice_the_timeout(es256_key: Key) -> None:
    # One byte every 0.2 s passes every per-read timeout; the whole answer has a deadline.
    jwks = json.dumps(KeySet([es256_key.public()]).to_jwks()).encode()
    with http_server({"/jwks": (200, jwks)}, trickle_seconds=0.2) as url:
        started = time.monotonic()
        result = invoke(
            "token", "verify", sign(es256_key), "--jwks", url + "/jwks", "--timeout", "1"
        )
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert result.stderr == f"error: ERR_JWKS_FETCH: GET {url}/jwks took over 2 s\n"


def test_verify_jwks_url_that_sends_too_much_is_err_jwks_fetch(es256_key: Key) -> None:
    body = b'{"keys": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    with http_server({"/jwks": (200, body)}) as url:
        result = invoke("token", "verify", sign(es256_key), "--jwks", url + "/jwks")
    assert result.exit_code == 1
    assert result.stderr == f"error: ERR_JWKS_FETCH: GET {url}/jwks answered over 524288 bytes\n"


def test_verify_jwks_url_follows_a_redirect_without_reading_its_body(es256_key: Key) -> None:
    # httpx, left to follow redirects, reads a 3xx body whole, outside the cap and deadline.
    jwks = json.dumps(KeySet([es256_key.public()]).to_jwks()).encode()
    routes = {
        "/old": Answer(302, b"x" * 4000, {"Location": "/jwks"}, trickle_seconds=0.01),
        "/jwks": (200, jwks),
    }
    with http_server(routes) as url:
        started = time.monotonic()
        result = invoke("token", "verify", sign(es256_key), "--jwks", url + "/old")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 10  # the trickled 3xx body would take 40 s


def test_verify_jwks_url_that_redirects_for_ever_is_err_jwks_fetch(es256_key: Key) -> None:
    with http_server({"/a": Answer(302, b"", {"Location": "/a"})}) as url:
        result = invoke("token", "verify", sign(es256_key), "--jwks", url + "/a")
    assert result.exit_code == 1
    assert result.stderr == "error: ERR_JWKS_FETCH: over 3 redirects\n"


def test_verify_jwks_url_that_cannot_be_requested_is_one_line(es256_key: Key) -> None:
    # A host label over 63 characters: IDNA refuses it when the request is made.
    jwks_url = "http://a" + "b" * 300 + ".invalid/jwks"
    result = invoke("token", "verify", sign(es256_key), "--jwks", jwks_url)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ERR_JWKS_FETCH: cannot fetch ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("jwks_url", ["http://[::1/x", "http://127.0.0.1:1/ok\n"])
def test_verify_jwks_url_that_does_not_parse_is_a_usage_error(jwks_url: str) -> None:
    result = invoke("token", "verify", "a.b.c", "--jwks", jwks_url)
    assert result.exit_code == 2
    assert "is not a valid URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("body", [b"<html>", b'{"keys": "nope"}', b'{"keys": [{"kty": "?"}]}'])
def test_verify_jwks_url_that_serves_no_jwks_is_err_jwks_invalid(
    es256_key: Key, body: bytes
) -> None:
    with http_server({"/jwks": (200, body)}) as url:
        result = invoke("token", "verify", sign(es256_key), "--jwks", url + "/jwks")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ERR_JWKS_INVALID: ")


def test_verify_jwks_must_be_an_http_url() -> None:
    result = invoke("token", "verify", "a.b.c", "--jwks", "file:///etc/passwd")
    assert result.exit_code == 2
    assert "must be an http:// or https:// URL" in result.stderr


def test_verify_json_valid_document(es256_key: Key, key_files: dict[str, Path]) -> None:
    result = invoke(
        "token", "verify", "--json", sign(es256_key, aud="api"),
        "--key", str(key_files["public.pem"]), "--aud", "api",
    )  # fmt: skip
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert document["verdict"] == "valid"
    assert document["error"] is None
    assert document["claims"]["aud"] == "api"
    assert document["header"]["kid"] == es256_key.kid
    assert document["policy"]["audience"] == "api"
    assert set(document["times"]) == {"exp", "iat"}
    assert document["warnings"] == []


def test_verify_json_invalid_document(key_files: dict[str, Path]) -> None:
    token = forge({"alg": "ES256", "jku": "https://x"}, {"sub": "a", "email": "a@b.c"})
    result = invoke("token", "verify", "--json", token, "--key", str(key_files["public.pem"]))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["verdict"] == "invalid"
    assert document["error"]["code"] == "ERR_JWS_SIGNATURE_INVALID"
    assert [w["code"] for w in document["warnings"]] == [
        "WARN_KEY_HEADER",
        "WARN_NO_EXP",
        "WARN_PERSONAL_CLAIM",
    ]


def test_verify_json_claim_failure_names_the_claim(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    token = sign(es256_key, aud="api")
    result = invoke("token", "verify", "--json", token, "--key", str(key_files["public.pem"]),
                    "--aud", "web")  # fmt: skip
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "ERR_JWT_INVALID_AUD"
    assert error["claim"] == "aud"


def test_verify_json_fetch_failure_is_a_document_too(es256_key: Key) -> None:
    with http_server({}) as url:
        result = invoke("token", "verify", "--json", sign(es256_key), "--jwks", url + "/j")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["verdict"] == "error"
    assert document["error"]["code"] == "ERR_JWKS_FETCH"


def test_verify_says_it_checked_no_revocation_unless_given_the_feed(server: Any) -> None:
    # A revoked token printed a bare "valid": nothing said revocation was never looked at.
    token = server.login()["access_token"]
    keys = ("--jwks", f"{server.url}/.well-known/jwks.json", "--aud", "jotkit")
    unchecked = invoke("token", "verify", token, *keys)
    assert unchecked.exit_code == 0 and "revocation: not checked (no --feed)" in unchecked.stdout
    fed = invoke("token", "verify", token, *keys, "--feed", server.url)
    assert fed.exit_code == 0 and "revocation: checked against" in fed.stdout, fed.output
    assert server.client.post("/revoke", data={"token": token}).status_code == 200
    code, line = verdict(token, *keys, "--feed", server.url)
    assert code == 1 and line.startswith("INVALID: ERR_JWT_REVOKED: token revoked (jti)"), line
    as_json = invoke("token", "verify", token, *keys, "--json")
    assert json.loads(as_json.stdout)["revocation"] == "not checked (no --feed)"


def test_verify_with_an_unreachable_feed_fails_like_an_unreachable_jwks(
    es256_key: Key, key_files: dict[str, Path]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke(
        "token", "verify", sign(es256_key), "--key", str(key_files["public.pem"]),
        "--feed", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert result.exit_code == 1 and "valid" not in result.stdout, result.output
    assert result.stderr.startswith("error: ERR_REVOCATION_FEED_UNAVAILABLE: http://127.0.0.1:")
