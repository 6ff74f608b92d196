"""The node clients (``_node.py``), installed once per test session."""

from __future__ import annotations

import pytest
from _node import NodeClients, install


@pytest.fixture(scope="session")
def node_clients(tmp_path_factory: pytest.TempPathFactory) -> NodeClients:
    """node jose and oauth4webapi at the versions of node/package-lock.json."""
    return install(tmp_path_factory.mktemp("node-clients"))
