"""`jotkit keys generate | jwks | thumbprint`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from _cli_helpers import invoke

from jotkit.jose import ALGORITHMS, Key, KeySet, jwt

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2"
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6W"
    "eZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "Ed25519", "PS256"])
def test_generate_writes_a_private_pem_with_mode_0600(tmp_path: Path, alg: str) -> None:
    out = tmp_path / "signing.pem"
    result = invoke("keys", "generate", "--alg", alg, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    key = Key.from_pem(out.read_bytes())
    assert key.is_private
    assert alg in key.algorithms
    assert (
        result.stderr == f"wrote {alg} private key (kid {key.thumbprint()}) to {out} (mode 0600)\n"
    )


def test_generate_jwk_format_keeps_kid_and_alg(tmp_path: Path) -> None:
    out = tmp_path / "signing.jwk"
    result = invoke("keys", "generate", "--alg", "ES384", "--format", "jwk", "--kid", "k1",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0
    jwk = json.loads(out.read_text())
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == ("EC", "P-384", "ES384", "k1")
    assert "d" in jwk
    assert mode(out) == 0o600


def test_generate_kid_defaults_to_the_thumbprint(tmp_path: Path) -> None:
    out = tmp_path / "k.jwk"
    invoke("keys", "generate", "--format", "jwk", "--out", str(out))
    key = Key.from_jwk(json.loads(out.read_text()))
    assert key.kid == key.thumbprint()


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_generate_hmac_secret_is_a_jwk_of_the_full_hash_length(tmp_path: Path, alg: str) -> None:
    out = tmp_path / "secret.jwk"
    result = invoke("keys", "generate", "--alg", alg, "--out", str(out))
    assert result.exit_code == 0
    key = Key.from_jwk(json.loads(out.read_text()))
    assert key.kty == "oct"
    assert key.algorithms == {alg}
    assert mode(out) == 0o600
    assert result.stderr == f"wrote {alg} secret to {out} (mode 0600)\n"


def test_generate_hmac_secret_as_pem_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("keys", "generate", "--alg", "HS256", "--format", "pem")
    assert result.exit_code == 2
    assert "an HS256 secret has no PEM form; use --format jwk" in result.stderr


def test_generate_refuses_to_overwrite_a_file(tmp_path: Path) -> None:
    out = tmp_path / "signing.pem"
    out.write_text("precious")
    result = invoke("keys", "generate", "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_FILE_EXISTS: ")
    assert out.read_text() == "precious"


def test_generate_force_overwrites_and_tightens_the_mode(tmp_path: Path) -> None:
    out = tmp_path / "signing.pem"
    out.write_text("old")
    out.chmod(0o644)
    result = invoke("keys", "generate", "--out", str(out), "--force")
    assert result.exit_code == 0
    assert mode(out) == 0o600
    assert Key.from_pem(out.read_bytes()).is_private


def test_generate_into_a_missing_directory_is_exit_2(tmp_path: Path) -> None:
    result = invoke("keys", "generate", "--out", str(tmp_path / "no" / "such" / "k.pem"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_FILE_UNWRITABLE: ")


def test_generate_writes_to_stdout_without_out() -> None:
    result = invoke("keys", "generate", "--alg", "Ed25519", "--format", "jwk")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["crv"] == "Ed25519"


def test_generate_refuses_an_unknown_algorithm() -> None:
    result = invoke("keys", "generate", "--alg", "none")
    assert result.exit_code == 2
    assert "Invalid value for '--alg'" in result.stderr


def test_jwks_publishes_only_public_parts(es256_key: Key, key_files: dict[str, Path]) -> None:
    result = invoke("keys", "jwks", str(key_files["private.pem"]))
    assert result.exit_code == 0
    (jwk,) = json.loads(result.stdout)["keys"]
    assert jwk == {
        name: es256_key.to_jwk()[name] for name in ("kty", "crv", "x", "y", "kid")
    }  # no "d", and no "alg": PEM does not carry one
    assert jwk["kid"] == es256_key.thumbprint()


def test_jwks_of_several_files_verifies_tokens_of_each_key(tmp_path: Path) -> None:
    keys = [Key.generate("ES256"), Key.generate("RS256"), Key.generate("Ed25519")]
    paths = []
    for index, key in enumerate(keys):
        paths.append(tmp_path / f"k{index}.pem")
        paths[-1].write_bytes(key.to_pem(private=True))
    result = invoke("keys", "jwks", *map(str, paths))
    assert result.exit_code == 0
    published = KeySet.from_jwks(result.stdout)
    assert len(published) == 3
    for key in keys:
        token = jwt.sign({"exp": 2**40}, Key.from_pem(key.to_pem(private=True), kid=key.kid))
        assert jwt.verify(token, published)["exp"] == 2**40


def test_jwks_token_signed_with_a_pem_verifies_against_its_published_jwks(
    key_files: dict[str, Path],
) -> None:
    published = invoke("keys", "jwks", str(key_files["public.pem"])).stdout
    token = invoke("token", "sign", "--key", str(key_files["private.pem"]), "--exp", "1m").stdout
    assert jwt.verify(token.strip(), KeySet.from_jwks(published))["iat"] > 0


def test_jwks_lists_the_same_key_once(key_files: dict[str, Path]) -> None:
    result = invoke("keys", "jwks", str(key_files["private.pem"]), str(key_files["public.pem"]))
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["keys"]) == 1
    assert result.stderr.startswith("warning: WARN_DUPLICATE_KEY: ")


def test_jwks_refuses_two_different_keys_with_one_kid(tmp_path: Path) -> None:
    for name in ("a.jwk", "b.jwk"):
        (tmp_path / name).write_text(json.dumps(Key.generate("ES256", kid="same").to_jwk()))
    result = invoke("keys", "jwks", str(tmp_path / "a.jwk"), str(tmp_path / "b.jwk"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ERR_JWKS_DUPLICATE_KID: ")


def test_jwks_refuses_to_publish_an_hmac_secret(tmp_path: Path) -> None:
    (tmp_path / "s.jwk").write_text(json.dumps(Key.generate("HS256").to_jwk(private=True)))
    result = invoke("keys", "jwks", str(tmp_path / "s.jwk"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ERR_JWKS_SECRET_KEY: ")


def test_jwks_reports_skipped_keys_of_a_jwks_file(tmp_path: Path, es256_key: Key) -> None:
    (tmp_path / "mixed.json").write_text(
        json.dumps({"keys": [es256_key.public().to_jwk(), {"kty": "unknown"}]})
    )
    result = invoke("keys", "jwks", "--json", str(tmp_path / "mixed.json"))
    document = json.loads(result.stdout)
    assert len(document["jwks"]["keys"]) == 1
    assert [w["code"] for w in document["warnings"]] == ["WARN_JWKS_KEYS_SKIPPED"]


def test_jwks_json_describes_each_key(es256_key: Key, key_files: dict[str, Path]) -> None:
    result = invoke("keys", "jwks", "--json", str(key_files["private.jwk"]))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert set(document) == {"jwks", "keys", "warnings"}
    (summary,) = document["keys"]
    assert summary["private"] is True
    assert summary["kid"] == es256_key.kid
    assert summary["thumbprint"] == es256_key.thumbprint()


def test_jwks_missing_file_is_exit_2_in_json_too(tmp_path: Path) -> None:
    result = invoke("keys", "jwks", "--json", str(tmp_path / "missing.pem"))
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "ERR_FILE_UNREADABLE"


def test_thumbprint_matches_the_rfc_7638_example(tmp_path: Path) -> None:
    (tmp_path / "rfc.jwk").write_text(json.dumps(RFC7638_JWK))
    result = invoke("keys", "thumbprint", str(tmp_path / "rfc.jwk"))
    assert result.exit_code == 0
    assert result.stdout == RFC7638_THUMBPRINT + "\n"


@pytest.mark.parametrize("file", ["private.pem", "public.pem", "private.jwk", "public.jwk"])
def test_thumbprint_is_the_same_for_every_form_of_a_key(
    es256_key: Key, key_files: dict[str, Path], file: str
) -> None:
    result = invoke("keys", "thumbprint", str(key_files[file]))
    assert result.stdout.strip() == es256_key.thumbprint()


def test_thumbprint_of_a_jwks_lists_every_key_with_its_kid(tmp_path: Path) -> None:
    keys = [Key.generate("ES256", kid="a"), Key.generate("Ed25519", kid="b")]
    (tmp_path / "jwks.json").write_text(json.dumps(KeySet(keys).to_jwks()))
    result = invoke("keys", "thumbprint", str(tmp_path / "jwks.json"))
    assert result.stdout.splitlines() == [f"{key.thumbprint()}  {key.kid}" for key in keys]


def test_thumbprint_json_gives_the_rfc_9278_uri(tmp_path: Path) -> None:
    (tmp_path / "rfc.jwk").write_text(json.dumps(RFC7638_JWK))
    document = json.loads(invoke("keys", "thumbprint", "--json", str(tmp_path / "rfc.jwk")).stdout)
    (key,) = document["keys"]
    assert key["thumbprint"] == RFC7638_THUMBPRINT
    assert key["thumbprint_uri"] == (
        "urn:ietf:params:oauth:jwk-thumbprint:sha-256:" + RFC7638_THUMBPRINT
    )
    assert key["kid"] == "2011-04-29"
    assert document["hash"] == "SHA-256"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "ERR_JWK_INVALID"),
        (b"not a key", "ERR_JWK_INVALID"),
        (b"{not json", "ERR_JWK_INVALID"),
        (b'{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}', "ERR_JWK_INVALID"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "ERR_JWK_INVALID"),
        (b'{"keys": []}', "ERR_JWK_INVALID"),
    ],
)
def test_a_file_that_holds_no_key_is_one_line_and_exit_2(
    tmp_path: Path, content: bytes, code: str
) -> None:
    (tmp_path / "bad").write_bytes(content)
    result = invoke("keys", "thumbprint", str(tmp_path / "bad"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {code}: {tmp_path / 'bad'}: ")
    assert len(result.stderr.splitlines()) == 1


def test_an_encrypted_pem_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "enc.pem").write_bytes(Key.generate("ES256").to_pem(private=True, password=b"pw"))
    result = invoke("keys", "thumbprint", str(tmp_path / "enc.pem"))
    assert result.exit_code == 2
    assert "encrypted" in result.stderr


def test_every_algorithm_generates_a_key_the_cli_can_read_back(tmp_path: Path) -> None:
    for alg in sorted(ALGORITHMS):
        if alg.startswith(("RS", "PS")) and alg not in ("RS256", "PS256"):
            continue  # RSA generation is slow; RS256/PS256 cover the key type
        out = tmp_path / f"{alg}.jwk"
        assert (
            invoke("keys", "generate", "--alg", alg, "--format", "jwk", "--out", str(out)).exit_code
            == 0
        )
        assert invoke("keys", "thumbprint", str(out)).exit_code == 0
