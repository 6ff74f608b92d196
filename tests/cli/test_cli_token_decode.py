"""`jotkit token decode`: what a token says, UNVERIFIED, with warnings and dates."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from _cli_helpers import ANSI_ESCAPE, forge, invoke, sign

from jotkit.jose import Key
from jotkit.jose.claims import PERSONAL_CLAIM_NAMES, SECRET_CLAIM_NAMES
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES

HEADER = {"alg": "ES256", "typ": "JWT"}


def decode_json(token: str) -> dict[str, Any]:
    result = invoke("token", "decode", "--json", token)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def warning_codes(token: str) -> list[str]:
    return [warning["code"] for warning in decode_json(token)["warnings"]]


def test_decode_shows_header_and_claims_as_indented_json(es256_key: Key) -> None:
    result = invoke("token", "decode", sign(es256_key, aud="api"))
    assert result.exit_code == 0
    assert 'HEADER\n{\n  "alg": "ES256",\n  "typ": "JWT",' in result.stdout
    assert 'CLAIMS\n{\n  "sub": "alice",' in result.stdout
    assert '  "aud": "api"' in result.stdout


def test_decode_says_plainly_that_nothing_was_verified(es256_key: Key) -> None:
    result = invoke("token", "decode", sign(es256_key))
    assert (
        "signed, not encrypted: anyone holding this token can read it; this decode verified nothing"
    ) in result.stdout
    assert decode_json(sign(es256_key))["verified"] is False


def test_decode_does_not_check_the_signature(es256_key: Key) -> None:
    now = int(time.time())
    token = forge(HEADER, {"sub": "mallory", "exp": now + 60})
    result = invoke("token", "decode", token)
    assert result.exit_code == 0
    assert '"sub": "mallory"' in result.stdout


@pytest.mark.parametrize("argument", ["-", None])
def test_decode_reads_the_token_from_stdin(es256_key: Key, argument: str | None) -> None:
    args = ["token", "decode"] + ([argument] if argument else [])
    result = invoke(*args, input=sign(es256_key) + "\n")
    assert result.exit_code == 0
    assert '"sub": "alice"' in result.stdout


def test_decode_accepts_an_authorization_header_value(es256_key: Key) -> None:
    result = invoke("token", "decode", "-", input="Bearer " + sign(es256_key))
    assert result.exit_code == 0
    assert '"sub": "alice"' in result.stdout


def test_decode_shows_exp_as_an_iso_date_and_expires_in(es256_key: Key) -> None:
    now = int(time.time())
    exp = now + 12 * 60 + 20  # 20 s of slack: the text must not depend on how fast we run
    result = invoke("token", "decode", forge(HEADER, {"exp": exp}))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
    assert f'"exp": {exp}  // {iso}, expires in 12 min' in result.stdout


def test_decode_shows_an_expired_token_as_expired_hours_ago() -> None:
    now = int(time.time())
    result = invoke("token", "decode", forge(HEADER, {"exp": now - 3 * 3600 - 60}))
    assert "expired 3 h ago" in result.stdout


def test_decode_shows_iat_as_issued_minutes_ago() -> None:
    now = int(time.time())
    result = invoke("token", "decode", forge(HEADER, {"iat": now - 5 * 60 - 10, "exp": now + 60}))
    assert "issued 5 min ago" in result.stdout


def test_decode_shows_nbf_and_auth_time() -> None:
    now = int(time.time())
    token = forge(HEADER, {"nbf": now + 2 * 86400 + 600, "auth_time": now - 3 * 86400 - 600})
    result = invoke("token", "decode", token)
    assert "not valid for another 2 days" in result.stdout
    assert "authenticated 3 days ago" in result.stdout


def test_decode_json_gives_times_as_iso_and_relative() -> None:
    now = int(time.time())
    exp = now + 12 * 60 + 20
    times = decode_json(forge(HEADER, {"exp": exp, "iat": now - 30}))["times"]
    assert times["exp"]["iso"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
    assert times["exp"]["relative"] == "expires in 12 min"
    assert times["iat"]["value"] == now - 30


def test_decode_warns_alg_none_and_calls_the_token_unsigned() -> None:
    now = int(time.time())
    token = forge({"alg": "none"}, {"sub": "x", "exp": now + 60}, signature="")
    assert "WARN_ALG_NONE" in warning_codes(token)
    result = invoke("token", "decode", token)
    assert 'warning: WARN_ALG_NONE: alg is "none": the token is unsigned' in result.stdout
    assert "unsigned (alg: none)" in result.stdout


def test_decode_warns_about_a_crit_header() -> None:
    now = int(time.time())
    token = forge({"alg": "HS256", "crit": ["exp"], "exp": 1}, {"exp": now + 60})
    assert warning_codes(token) == ["WARN_CRIT"]


def test_decode_warns_when_there_is_no_exp(es256_key: Key) -> None:
    token = sign(es256_key, lifetime=None)
    assert "WARN_NO_EXP" in warning_codes(token)
    result = invoke("token", "decode", token)
    assert 'warning: WARN_NO_EXP: no "exp" claim: this token never expires' in result.stdout


def test_decode_warns_about_a_lifetime_over_one_hour(es256_key: Key) -> None:
    result = invoke("token", "decode", sign(es256_key, lifetime=2 * 3600))
    assert "warning: WARN_LONG_LIFETIME: lifetime 2 h (from iat to exp) is over 1 h" in (
        result.stdout
    )


def test_decode_does_not_warn_about_a_lifetime_of_one_hour(es256_key: Key) -> None:
    assert warning_codes(sign(es256_key, lifetime=3600)) == []


def test_decode_measures_the_lifetime_from_now_without_iat() -> None:
    now = int(time.time())
    codes = warning_codes(forge(HEADER, {"exp": now + 3 * 3600}))
    assert codes == ["WARN_LONG_LIFETIME"]


@pytest.mark.parametrize("name", sorted(SECRET_CLAIM_NAMES))
def test_decode_warns_about_claims_that_look_secret(name: str) -> None:
    now = int(time.time())
    token = forge(HEADER, {"sub": "x", "exp": now + 60, name: "value"})
    document = decode_json(token)
    assert document["warnings"] == [
        {
            "code": "WARN_SECRET_CLAIM",
            "message": f'claims that look like secrets: "{name}"; anyone holding the token '
            "can read them",
        }
    ]


@pytest.mark.parametrize("name", sorted(PERSONAL_CLAIM_NAMES))
def test_decode_warns_about_claims_that_look_personal(name: str) -> None:
    now = int(time.time())
    token = forge(HEADER, {"sub": "x", "exp": now + 60, name: "value"})
    assert warning_codes(token) == ["WARN_PERSONAL_CLAIM"]
    assert f'WARN_PERSONAL_CLAIM: claims that look like personal data: "{name}"' in (
        invoke("token", "decode", token).stdout
    )


def test_decode_matches_sensitive_names_like_jwt_sign_does() -> None:
    now = int(time.time())
    token = forge(HEADER, {"exp": now + 60, "API-Key": "k", "Phone_Number": "1"})
    assert warning_codes(token) == ["WARN_SECRET_CLAIM", "WARN_PERSONAL_CLAIM"]


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
def test_decode_warns_about_headers_that_name_or_carry_a_key(member: str) -> None:
    now = int(time.time())
    token = forge({**HEADER, member: "https://attacker.example/key"}, {"exp": now + 60})
    assert warning_codes(token) == ["WARN_KEY_HEADER"]
    result = invoke("token", "decode", token)
    assert f'warning: WARN_KEY_HEADER: the header carries "{member}"' in result.stdout


def test_decode_warns_about_a_time_claim_that_is_not_a_number() -> None:
    codes = warning_codes(forge(HEADER, {"exp": "tomorrow"}))
    assert "WARN_BAD_DATE" in codes


def test_decode_warns_about_a_token_over_the_verifier_size_cap() -> None:
    now = int(time.time())
    token = forge(HEADER, {"exp": now + 60, "pad": "x" * DEFAULT_MAX_TOKEN_BYTES})
    assert warning_codes(token) == ["WARN_TOKEN_TOO_LARGE"]


def test_decode_escapes_terminal_control_characters_from_the_token() -> None:
    now = int(time.time())
    token = forge(HEADER, {"exp": now + 60, "name": "\x1b[2J\x9b31m\u202eevil"})
    result = invoke("token", "decode", "--color", token)
    assert "\x1b[2J" not in result.stdout
    assert "\x9b" not in result.stdout
    assert "\u202e" not in result.stdout
    assert r'"\u001b[2J\u009b31m\u202eevil"' in result.stdout


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("not-a-token", "ERR_JWS_MALFORMED"),
        ("a.b", "ERR_JWS_MALFORMED"),
        ("e30.e30.sig.extra.parts", "ERR_JWE_NOT_SUPPORTED"),
        ('{"payload":"e30","signatures":[]}', "ERR_JWS_JSON_SERIALIZATION"),
        ("!!!.e30.sig", "ERR_JWS_MALFORMED"),
        ("e30.bm90IGpzb24.sig", "ERR_JWT_CLAIMS_INVALID"),
    ],
)
def test_decode_malformed_token_is_one_line_with_its_code_and_exit_1(token: str, code: str) -> None:
    result = invoke("token", "decode", token)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {code}: not a decodable JWT: ")


def test_decode_says_a_five_segment_token_is_a_jwe() -> None:
    result = invoke("token", "decode", "a.b.c.d.e")
    assert "encrypted JWE" in result.stderr


def test_decode_non_ascii_input_is_malformed() -> None:
    result = invoke("token", "decode", "-", input="é.e30.sig".encode())
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ERR_JWS_MALFORMED: not a decodable JWT: ")


def test_decode_empty_input_is_a_usage_error_exit_2() -> None:
    result = invoke("token", "decode", "-", input="\n")
    assert result.exit_code == 2
    assert result.stderr == "error: ERR_NO_TOKEN: no token given\n"


def test_decode_json_is_one_document_with_header_claims_and_warnings(es256_key: Key) -> None:
    document = decode_json(sign(es256_key, lifetime=None, email="a@example.com"))
    assert set(document) == {"verified", "notice", "header", "claims", "times", "warnings"}
    assert document["header"] == {"alg": "ES256", "typ": "JWT", "kid": es256_key.kid}
    assert document["claims"]["email"] == "a@example.com"
    codes = [warning["code"] for warning in document["warnings"]]
    assert codes == ["WARN_NO_EXP", "WARN_PERSONAL_CLAIM"]


def test_decode_json_reports_a_malformed_token_as_a_document_too() -> None:
    result = invoke("token", "decode", "--json", "a.b")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["verified"] is False
    assert document["error"]["code"] == "ERR_JWS_MALFORMED"


def test_decode_output_has_no_colour_when_not_a_terminal(es256_key: Key) -> None:
    result = invoke("token", "decode", sign(es256_key))
    assert ANSI_ESCAPE not in result.stdout


def test_decode_colour_flag_forces_colour(es256_key: Key) -> None:
    result = invoke("token", "decode", "--color", sign(es256_key))
    assert '\x1b[34m\x1b[1m"alg"\x1b[0m: \x1b[32m"ES256"\x1b[0m' in result.stdout


def test_decode_json_is_never_coloured(es256_key: Key) -> None:
    result = invoke("token", "decode", "--json", "--color", sign(es256_key))
    assert ANSI_ESCAPE not in result.stdout
