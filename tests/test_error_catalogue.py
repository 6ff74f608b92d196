"""The error catalogue (jotkit.codes) is closed and complete.

The source under src/ is read with ``ast``: a code must be named by its constant, never
written as a string, built with an f-string or joined from pieces; a ``code`` passed or
assigned anywhere is a catalogue constant, a name bound to one, or a code an error already
carries. Every code the web page's scripts, the README and the docs name exists; every
catalogue code is raised somewhere (or is reserved, with the reason); the guard and the server
answer each code with the status the catalogue gives; docs/errors.md is the catalogue.

``.venv/bin/python tests/test_error_catalogue.py`` rewrites docs/errors.md from the catalogue.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

import jotkit.codes
from jotkit.codes import CATALOGUE
from jotkit.guard.errors import challenge
from jotkit.jose.claims import validate
from jotkit.jose.dpop import DPOP_ERRORS, DPoPError
from jotkit.jose.errors import INVALID_CLAIM_CODES, MISSING_CLAIM_CODES, InvalidClaim, JoseError
from jotkit.server.errors import STATUS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "jotkit"
CATALOGUE_FILE = PACKAGE / "codes.py"
ERRORS_DOC = ROOT / "docs" / "errors.md"
# A code, or a piece of one; ``ERR_DPOP_*`` in prose stands for every code with that prefix.
CODE_TEXT = re.compile(r"ERR_[A-Z0-9_]*(\*?)")
# Functions that take the code as their first argument rather than as ``code=``.
CODE_FIRST = {"CliError", "CliInputError"}


def _unknown_codes(text: str, aliases: Collection[str] = ()) -> list[str]:
    """The codes (or pieces of codes) in ``text`` that the catalogue does not have (nor
    ``aliases``, other names of constants that hold a code)."""
    unknown = []
    for match in CODE_TEXT.finditer(text):
        name, wildcard = match.group(0).rstrip("*"), match.group(1)
        if wildcard:
            if not any(code.startswith(name) for code in CATALOGUE):
                unknown.append(match.group(0))
        elif name not in CATALOGUE and name not in aliases:
            unknown.append(name)
    return unknown


def _python_sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text()


def _module_level_assignments(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            yield target.id, value


class _Bindings:
    """The names under src/ that hold a code: aliases (``ERR_DPOP_JKT = ERR_DPOP_JKT_MISMATCH``)
    and tables whose values are all codes (``INVALID_CLAIM_CODES``)."""

    def __init__(self, trees: list[ast.Module]) -> None:
        self.aliases: set[str] = set()
        self.tables: set[str] = set()
        for tree in trees:
            for name, value in _module_level_assignments(tree):
                if isinstance(value, ast.Name) and value.id in CATALOGUE:
                    self.aliases.add(name)
                elif (
                    isinstance(value, ast.Dict)
                    and value.values
                    and all(self.holds_code(item) for item in value.values)
                ):
                    self.tables.add(name)

    def holds_code(self, node: ast.expr, *, local_code: bool = True) -> bool:
        """Whether ``node`` can only evaluate to a catalogue code (or None: no code given).
        ``local_code``: whether a variable named ``code`` in this scope holds only codes."""
        if isinstance(node, ast.Name):
            return (
                node.id in CATALOGUE
                or node.id in self.aliases
                or (node.id == "code" and local_code)
            )
        if isinstance(node, ast.Attribute):
            # ``exc.code``, ``type(self).code``: a code an error already carries;
            # ``codes.ERR_X``: the constant.
            return node.attr == "code" or node.attr in CATALOGUE
        if isinstance(node, ast.Constant):
            return node.value is None
        if isinstance(node, ast.IfExp):
            return all(self.holds_code(n, local_code=local_code) for n in (node.body, node.orelse))
        if isinstance(node, ast.BoolOp):
            return all(self.holds_code(n, local_code=local_code) for n in node.values)
        if isinstance(node, ast.Subscript):
            return isinstance(node.value, ast.Name) and node.value.id in self.tables
        if isinstance(node, ast.Call):
            function = node.func
            return (
                isinstance(function, ast.Attribute)
                and function.attr == "get"
                and isinstance(function.value, ast.Name)
                and function.value.id in self.tables
                and len(node.args) == 2
                and self.holds_code(node.args[1], local_code=local_code)
            )
        return False


def _assigned_to_code(node: ast.AST) -> ast.expr | None:
    """The value of ``code = <value>`` (or ``code: str = <value>``), else None."""
    if isinstance(node, ast.Assign):
        if any(isinstance(target, ast.Name) and target.id == "code" for target in node.targets):
            return node.value
    elif (
        isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "code"
    ):
        return node.value
    return None


def _passed_codes(call: ast.Call) -> list[ast.expr]:
    """The codes a call passes: ``code=...``, or the first argument of CliError & co."""
    passed = [keyword.value for keyword in call.keywords if keyword.arg == "code"]
    function = call.func
    name = function.attr if isinstance(function, ast.Attribute) else None
    if isinstance(function, ast.Name):
        name = function.id
    if name in CODE_FIRST and call.args:
        passed.append(call.args[0])
    return passed


class _Checker(ast.NodeVisitor):
    """What is wrong with the codes in one Python module."""

    def __init__(self, where: str, bindings: _Bindings, *, catalogue: bool) -> None:
        self.where = where
        self.bindings = bindings
        self.catalogue = catalogue
        self.found: list[str] = []
        self.local_code = [True]  # whether ``code`` in the current function holds only codes

    def _report(self, node: ast.AST, problem: str) -> None:
        self.found.append(f"{self.where}:{getattr(node, 'lineno', '?')}: {problem}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A parameter named ``code`` is filled by callers, which are checked; what the
        # function itself assigns to it must be a code.
        values = [value for n in ast.walk(node) if (value := _assigned_to_code(n)) is not None]
        self.local_code.append(all(self.bindings.holds_code(value) for value in values))
        self.generic_visit(node)
        self.local_code.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            self._check_attribute(statement)
        self.generic_visit(node)

    def visit_Module(self, node: ast.Module) -> None:
        for statement in node.body:
            self._check_attribute(statement)
        self.generic_visit(node)

    def _check_attribute(self, statement: ast.stmt) -> None:
        value = _assigned_to_code(statement)
        if value is not None and not self.catalogue and not self.bindings.holds_code(value):
            self._report(statement, f"code = {ast.unparse(value)} is not a catalogue constant")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for code in _unknown_codes(node.value):
                self._report(node, f"{code} is not in the catalogue")
            if not self.catalogue and re.fullmatch(r"ERR_[A-Z0-9_]+", node.value):
                self._report(node, f"the literal {node.value!r}: use the constant")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        if any(isinstance(part, ast.Constant) and "ERR_" in part.value for part in node.values):
            self._report(node, "an f-string builds a code")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        sides = (node.left, node.right)
        if any(isinstance(side, ast.Constant) and "ERR_" in str(side.value) for side in sides):
            self._report(node, "a code is joined from pieces")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for value in _passed_codes(node):
            if not self.bindings.holds_code(value, local_code=self.local_code[-1]):
                self._report(node, f"code={ast.unparse(value)} is not a catalogue constant")
        self.generic_visit(node)


def _violations(source: str, where: str, bindings: _Bindings, *, catalogue: bool) -> list[str]:
    """What is wrong with the codes in one Python module (``catalogue``: it is jotkit.codes)."""
    checker = _Checker(where, bindings, catalogue=catalogue)
    checker.visit(ast.parse(source))
    return checker.found


def _bindings() -> _Bindings:
    return _Bindings([ast.parse(source) for _, source in _python_sources()])


def test_the_catalogue_constants_are_the_codes() -> None:
    constants = {
        name: value
        for name, value in vars(jotkit.codes).items()
        if name.startswith("ERR_") and isinstance(value, str)
    }
    assert all(name == value for name, value in constants.items())
    assert set(constants) == set(CATALOGUE)
    assert len(CATALOGUE) > 90
    for code, entry in CATALOGUE.items():
        assert entry.meaning and "\n" not in entry.meaning and "|" not in entry.meaning, code
        assert (entry.status is None) == (entry.error is None), code
        assert entry.reserved is None or entry.reserved.strip(), code


def test_source_names_only_catalogue_codes_by_their_constants() -> None:
    bindings = _bindings()
    found = []
    for path, source in _python_sources():
        where = str(path.relative_to(ROOT))
        found += _violations(source, where, bindings, catalogue=path == CATALOGUE_FILE)
    assert found == []


def test_the_check_fails_on_each_way_of_escaping_the_catalogue() -> None:
    bindings = _bindings()
    planted = {
        'raise InvalidClaim("m", claim=c, code=f"ERR_JWT_INVALID_{c.upper()}")': 4,
        'code = "ERR_JWT_EXPIRED"': 2,
        'raise FeedError("m", code="ERR_FEED_GONE")': 3,
        'raise FeedError("m", code=kind)': 1,
        'def f():\n    code = kind.upper()\n    raise FeedError("m", code=code)': 1,
        'raise CliError("ERR_" + name.upper(), "m")': 3,
        'raise CliError("ERR_%s" % name, "m")': 3,
        'x = "see ``ERR_NO_SUCH_CODE``"': 1,
        'x = "every ``ERR_NOPE_*`` code"': 1,
    }
    for source, expected in planted.items():
        assert len(_violations(source, "planted", bindings, catalogue=False)) == expected, source
    allowed = [
        "raise FeedError('m', code=ERR_REVOCATION_FEED_MALFORMED)",
        "raise CliError(exc.code, 'm')",
        "code = ERR_OUTPUT if error else ERR_UNEXPECTED",
        "def f(code):\n    raise JoseError('m', code=code or ERR_JOSE)",
        "def f():\n    code = 1\n    return error_response(code)",
        "raise DPoPError('m', code=ERR_DPOP_JKT)",
        "raise InvalidClaim('m', claim=c, code=MISSING_CLAIM_CODES.get(c, ERR_JWT_MISSING_CLAIM))",
        'x = "every ``ERR_DPOP_*`` code, and ``ERR_JWT_EXPIRED``"',
    ]
    for source in allowed:
        assert _violations(source, "planted", bindings, catalogue=False) == [], source


def test_the_web_page_names_only_catalogue_codes() -> None:
    scripts = sorted((PACKAGE / "web" / "static").glob("*.js"))
    assert scripts
    for path in scripts:
        assert _unknown_codes(path.read_text()) == [], path.name


def test_the_docs_name_only_catalogue_codes() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages += sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*"))
    aliases = _bindings().aliases  # docs/renames.md names the old names of constants
    named = 0
    for path in pages:
        # docs/renames.md quotes the f-strings that built codes before the catalogue.
        text = re.sub(r"ERR_[A-Z_]*\{\w+\.upper\(\)\}", "", path.read_text())
        named += len(CODE_TEXT.findall(text))
        assert _unknown_codes(text, aliases) == [], path.relative_to(ROOT)
    assert named > 100


def test_every_catalogue_code_is_raised_somewhere_or_reserved() -> None:
    used: set[str] = set()
    for path, source in _python_sources():
        if path == CATALOGUE_FILE:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
    for path in (PACKAGE / "web" / "static").glob("*.js"):
        used.update(re.findall(r'"(ERR_[A-Z0-9_]+)"', path.read_text()))
    dead = [code for code, entry in CATALOGUE.items() if code not in used and not entry.reserved]
    assert dead == []
    reserved_but_used = [
        code for code, entry in CATALOGUE.items() if entry.reserved and code in used
    ]
    assert reserved_but_used == []


_GUARD_ANSWERS = {"invalid_token", "missing_token", "invalid_request", "insufficient_scope"}
_GUARD_ANSWERS |= {"temporarily_unavailable", "invalid_dpop_proof", "use_dpop_nonce"}


@pytest.mark.parametrize(
    "code", [code for code, entry in CATALOGUE.items() if entry.error in _GUARD_ANSWERS]
)
def test_the_guard_answers_each_code_as_the_catalogue_says(code: str) -> None:
    entry = CATALOGUE[code]
    is_proof = code in DPOP_ERRORS or (code.startswith("ERR_DPOP_") and entry.status == 401)
    error = DPoPError("refused", code=code) if is_proof else JoseError("refused", code=code)
    answer = challenge(error)
    assert (answer.status, answer.body["error"], answer.body["code"]) == (
        entry.status,
        entry.error,
        code,
    )


def test_the_server_answers_its_codes_with_the_catalogue_status() -> None:
    server_codes = {
        code: entry
        for code, entry in CATALOGUE.items()
        if entry.status is not None and entry.error not in _GUARD_ANSWERS
    }
    assert set(server_codes) == {"ERR_STORE", "ERR_CONFLICT"}
    for entry in server_codes.values():
        assert entry.error is not None
        assert STATUS[entry.error] == entry.status


def test_dpop_errors_are_the_catalogue_values() -> None:
    assert DPOP_ERRORS["ERR_DPOP_NONCE"] == "use_dpop_nonce"
    assert DPOP_ERRORS["ERR_DPOP_JKT_MISMATCH"] == "invalid_dpop_proof"
    assert DPoPError("m", code="ERR_DPOP_BOUND_TOKEN_AS_BEARER").error == "invalid_token"
    assert len(DPOP_ERRORS) == 17


def test_each_claim_has_its_codes_and_others_the_generic_ones() -> None:
    for claim, code in INVALID_CLAIM_CODES.items():
        assert InvalidClaim("m", claim=claim).code == code == f"ERR_JWT_INVALID_{claim.upper()}"
    assert InvalidClaim("m", claim="tenant").code == "ERR_JWT_CLAIM_INVALID"
    claims = {"exp": 2_000_000_000}
    for claim, code in MISSING_CLAIM_CODES.items():
        if claim != "exp":
            with pytest.raises(InvalidClaim) as raised:
                validate(claims, now=1_900_000_000, require=("exp", claim))
            assert (raised.value.code, raised.value.claim) == (code, claim)
    with pytest.raises(InvalidClaim) as raised:
        validate(claims, now=1_900_000_000, require=("exp", "tenant"))
    assert (raised.value.code, raised.value.claim) == ("ERR_JWT_MISSING_CLAIM", "tenant")


def render_errors_doc() -> str:
    """docs/errors.md, from the catalogue."""
    lines = [
        "# Error codes",
        "",
        "Every stable code jotkit raises or answers, from `src/jotkit/codes.py` (this page is",
        "generated: `.venv/bin/python tests/test_error_catalogue.py`, and",
        "`tests/test_error_catalogue.py` fails when it differs). Python code names a code by its",
        "constant (`from jotkit.codes import ERR_JWT_EXPIRED`); `JoseError.code` and the CLI's",
        "`error: CODE: message` line carry the same strings.",
        "",
        "HTTP is the status and the `error` value of the answer that carries the code: a",
        "guard's refusal (RFC 6750 §3.1, RFC 9449 §7.1; the body also has `code`) or the",
        "server's own answer. A code without one is a library or command line failure (a",
        "guard that met one anyway would answer it as any other refused token: 401",
        "`invalid_token`).",
        "",
        "| code | meaning | HTTP | `error` |",
        "|---|---|---|---|",
    ]
    for code, entry in CATALOGUE.items():
        meaning = entry.meaning + (f" (reserved: {entry.reserved})" if entry.reserved else "")
        status = str(entry.status) if entry.status is not None else "—"
        error = f"`{entry.error}`" if entry.error is not None else "—"
        lines.append(f"| `{code}` | {meaning} | {status} | {error} |")
    return "\n".join(lines) + "\n"


def test_the_errors_page_is_the_catalogue() -> None:
    assert ERRORS_DOC.read_text() == render_errors_doc()


if __name__ == "__main__":
    ERRORS_DOC.write_text(render_errors_doc())
    sys.exit(0)
