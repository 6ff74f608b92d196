"""docs/security.md names, for each attack, the test that proves it is stopped: those tests
must exist, so that the page cannot cite a proof that was renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_security_page_cites_exists() -> None:
    page = (ROOT / "docs" / "security.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)`", page)
    assert len(cited) > 50
    for module, name in cited:
        source = (ROOT / "tests" / "jose" / module).read_text()
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{module}::{name}"
    for module in set(re.findall(r"`(test_\w+\.py)` \(every", page)):
        assert (ROOT / "tests" / "jose" / module).exists(), module


def test_every_test_the_page_cites_outside_the_core_exists() -> None:
    page = (ROOT / "docs" / "security.md").read_text()
    cited = re.findall(r"`(\w+/test_\w+\.py)::(test_\w+)`", page)
    assert len(cited) > 15
    for module, name in cited:
        source = (ROOT / "tests" / module).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"{module}::{name}"
