"""The hostile-input suite: each case runs against a real server process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adversarial.harness import start_server
from tests.e2e.conftest import ServerProcess


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module, on a fresh embedded store."""
    with start_server(tmp_path_factory.mktemp("hostile")) as server:
        yield server
