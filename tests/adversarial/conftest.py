"""The hostile-input suite: each case runs against a real server process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adversarial.harness import assert_running, rss_bytes, start_server
from tests.e2e.conftest import ServerProcess

#: how much a server may grow over a whole module of hostile requests: enough for what the
#: limits let through (a 256 KiB event, 3 MiB pages, capped templates and guests) and the
#: allocator keeping freed memory, far below what one unbounded request took (100 MB for
#: 'a'*10**8, 1.35 GB for one costly CEL publish)
MAX_GROWTH = 768 * 1024 * 1024


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module, on a fresh embedded store; after the module it must still
    run, within ``MAX_GROWTH`` of its memory at the start."""
    with start_server(tmp_path_factory.mktemp("hostile")) as server:
        baseline = rss_bytes(server.pid)
        yield server
        assert_running(server)
        grown = rss_bytes(server.pid) - baseline
        assert grown < MAX_GROWTH, f"the server grew by {grown >> 20} MiB over the module's hostile requests"
