"""The server against its own OpenAPI document: schemathesis, all checks, and the rules it found.

Two schemathesis runs on real ``jotkit serve`` processes: one on PostgreSQL with every
credential (a user's access token, the admin token, the introspection secret; see
schemathesis_hooks.py), one anonymous on SQLite. Each must end with no failure of any check:
no 5xx, every status, content type and body as documented, 405 with Allow for undeclared
methods, schema-valid requests accepted and invalid ones refused. JOTKIT_ST_EXAMPLES sets the
examples per operation (default 10: the module takes ~2-3 min on a loaded 2-core machine).

The tests after them pin each bug the first run found, so that a failure names its rule.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from pydantic import TypeAdapter, ValidationError

from servers import PG_URL, ServerProcess, postgres_schema, start_server

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
HOOKS_DIR = Path(__file__).parent
EXAMPLES = os.environ.get("JOTKIT_ST_EXAMPLES", "10")
SECRETS = {
    "JOTKIT_ADMIN_TOKEN": "schema-admin-token-" + "a" * 32,
    "JOTKIT_INTROSPECTION_SECRET": "schema-introspection-" + "i" * 32,
    # Every generated login fails; the throttle must not turn the run into 429s.
    "JOTKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
    "JOTKIT_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
}


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``jotkit serve`` on PostgreSQL (where a NUL in text is an error, not a character)."""
    with postgres_schema(PG_URL) as url:
        running = start_server(tmp_path_factory.mktemp("pg"), env=SECRETS, database_url=url)
        yield running
        running.stop()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``jotkit serve`` on SQLite, the default store."""
    running = start_server(tmp_path_factory.mktemp("sqlite"), env=SECRETS)
    yield running
    running.stop()


def _schemathesis(server: ServerProcess, *, credentials: bool) -> str:
    env = {
        **os.environ,
        **SECRETS,
        "PYTHONPATH": str(HOOKS_DIR),
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "JOTKIT_ST_CREDENTIALS": "1" if credentials else "0",
        "JOTKIT_ST_URL": server.url,
        "JOTKIT_ST_EMAIL": server.email,
        "JOTKIT_ST_PASSWORD": server.password,
        "NO_COLOR": "1",
    }
    run = subprocess.run(
        [
            SCHEMATHESIS, "run", f"{server.url}/openapi.json",
            "--checks", "all",
            "--max-examples", EXAMPLES,
            "--seed", "18",
            "--workers", "1",
            "--request-timeout", "30",
        ],
        capture_output=True, text=True, env=env, timeout=600,
        cwd=server.log_path.parent,  # where it keeps its .schemathesis cache
    )  # fmt: skip
    output = run.stdout + run.stderr
    failures = output.find("= FAILURES =")
    assert run.returncode == 0, output[failures : failures + 12000] or output[-12000:]
    tested = re.search(r"(\d+) generated", output)
    assert tested is not None and int(tested.group(1)) >= 100, output[-3000:]
    print(f"schemathesis: {tested.group(0)} test cases")  # the count for the issue's note
    return output


def test_schemathesis_all_checks_with_credentials_on_postgresql(pg_server: ServerProcess) -> None:
    _schemathesis(pg_server, credentials=True)


def test_schemathesis_all_checks_anonymous(sqlite_server: ServerProcess) -> None:
    _schemathesis(sqlite_server, credentials=False)


# --- what the first run found, one rule each ------------------------------------------------

CONTROL_EMAILS = ["a\x00b@example.com", "nul@exa\x00mple.com", "a\x1fb@x.y", "a\x7fb@x.y"]


@pytest.mark.parametrize("email", CONTROL_EMAILS)
def test_control_characters_in_an_email_are_refused_before_postgresql(
    pg_server: ServerProcess, email: str
) -> None:
    # A NUL reached PostgreSQL, which refused it with a DataError answered as "database
    # unavailable" (503): on /login without credentials, on /users with the admin token.
    login = pg_server.client.post("/login", json={"email": email, "password": "whatever"})
    admin = {"Authorization": f"Bearer {SECRETS['JOTKIT_ADMIN_TOKEN']}"}
    user = pg_server.client.post(
        "/users", json={"email": email, "password": "long enough"}, headers=admin
    )
    for answer in (login, user):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "validation_failed"


def test_an_email_too_long_once_lower_cased_is_refused(pg_server: ServerProcess) -> None:
    # "İ".lower() is two characters: 300 of them fit the 320 limit but not the column.
    email = "İ" * 300 + "@x.y"
    answer = pg_server.client.post("/login", json={"email": email, "password": "whatever"})
    assert answer.status_code == 422, answer.text


def test_a_session_id_with_a_nul_is_refused_before_postgresql(pg_server: ServerProcess) -> None:
    token = pg_server.login()["access_token"]
    answer = pg_server.client.delete(
        "/sessions/abc%00def", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/login", "POST"),
        ("GET", "/revoke", "POST"),
        ("TRACE", "/revoke", "POST"),
        ("PUT", "/me", "GET"),
        ("TRACE", "/index.html", "GET, HEAD"),
    ],
)
def test_a_method_a_path_does_not_take_gets_405_with_allow(
    sqlite_server: ServerProcess, method: str, path: str, allow: str
) -> None:
    # The page's files were mounted at "/", which matched every path first: GET /login got
    # the files' 404, and TRACE got 405 without the Allow header RFC 9110 §15.5.6 requires.
    answer = sqlite_server.client.request(method, path)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allow
    assert answer.json()["error"] == "method_not_allowed"


def test_the_page_and_unknown_paths_still_answer(sqlite_server: ServerProcess) -> None:
    assert sqlite_server.client.get("/").status_code == 200
    assert sqlite_server.client.get("/app.js").status_code == 200
    missing = sqlite_server.client.get("/no-such-file")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.fixture(scope="module")
def document(sqlite_server: ServerProcess) -> dict[str, Any]:
    """The server's OpenAPI document."""
    return sqlite_server.client.get("/openapi.json").json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_revoke_and_introspect_document_their_form_body(
    document: dict[str, Any], path: str
) -> None:
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    form = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["token"] and "token_type_hint" in form["properties"]


def test_jwks_media_type_is_the_documented_one(
    document: dict[str, Any], sqlite_server: ServerProcess
) -> None:
    documented = document["paths"]["/.well-known/jwks.json"]["get"]["responses"]["200"]
    served = sqlite_server.client.get("/.well-known/jwks.json").headers["content-type"]
    assert list(documented["content"]) == [served] == ["application/jwk-set+json"]


def test_error_statuses_are_documented_with_the_error_body(document: dict[str, Any]) -> None:
    login = document["paths"]["/login"]["post"]["responses"]
    for status in ("400", "401", "413", "422", "429", "431", "503"):
        schema = login[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status


# U+0085 (NEL) was a space to the server's regex engine and not to JSON Schema's (ECMA-262),
# so the document and the server disagreed about it; the others are the same kind of edge.
EDGE_CHARACTERS = "\x00\x09\x1c\x1f\x20\x7f\x85\x9f\xa0\u1680\u2000\u2028\u202f\u3000\ufeff"


@pytest.mark.parametrize("character", list(EDGE_CHARACTERS + "é_+.İ"))
def test_the_email_rule_is_one_rule_for_server_document_and_cli(
    document: dict[str, Any], character: str
) -> None:
    from jotkit.accounts import is_email
    from jotkit.server.routes import LoginRequest

    email = f"a{character}b@example.com"
    documented = document["components"]["schemas"]["LoginRequest"]["properties"]["email"]
    by_document = jsonschema_rs.validator_for(documented).is_valid(email)
    try:
        TypeAdapter(LoginRequest).validate_python({"email": email, "password": "x"})
        by_server = True
    except ValidationError:
        by_server = False
    by_cli = is_email(email)  # `jotkit users add`
    assert by_document == by_server == by_cli == (character in "é_+.İ")


def test_docs_page_loads_swagger_ui_from_this_server(sqlite_server: ServerProcess) -> None:
    page = sqlite_server.client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/docs/assets/") for source in sources), sources
    for source in sources:
        asset = sqlite_server.client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 500, source
    assert "swagger-ui-bundle.js" in page.text


def test_a_well_formed_refresh_without_a_body_is_a_clear_400(
    sqlite_server: ServerProcess,
) -> None:
    # The document now says the body is required; the server says why when it is missing.
    answer = httpx.post(f"{sqlite_server.url}/token/refresh", timeout=30)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "form",
    [
        {"token": "é" * 10},  # not 1*VSCHAR (RFC 6749 Appendix A)
        {"token": "x" * 8193},  # over what the verifier reads
        {"token": "x.y.z", "token_type_hint": "h" * 65},  # was a 500 on /introspect
    ],
)
@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_revoke_and_introspect_refuse_what_their_schema_refuses(
    sqlite_server: ServerProcess, path: str, form: dict[str, str]
) -> None:
    secret = {"Authorization": f"Bearer {SECRETS['JOTKIT_INTROSPECTION_SECRET']}"}
    answer = sqlite_server.client.post(path, data=form, headers=secret)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
