"""Adapters stay at the edge: the engine loads no database, queue, RPC or sandbox library,
and the domain model loads no engine. Each import runs in a fresh interpreter, since this
one has long loaded everything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ADAPTER_LIBRARIES = ("asyncpg", "redis", "grpc", "wasmtime", "docker")


def loaded_after(module: str, candidates: tuple[str, ...]) -> list[str]:
    code = (
        f"import json, sys\nimport {module}\nprint(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "neoactions.server.engine",
        "neoactions.domain.model",
        "neoactions.server.matching",
        "neoactions.server.flow",
        "neoactions.server.queue",
        "neoactions.server.changes",
    ],
)
def test_the_core_loads_no_adapter_library(module: str) -> None:
    assert loaded_after(module, ADAPTER_LIBRARIES) == []


def test_the_domain_model_loads_no_engine() -> None:
    assert loaded_after("neoactions.domain.model", ("neoactions.server.engine", "neoactions.server.matching")) == []


def test_the_check_can_fail() -> None:
    """The probe sees a library when the module does load it."""
    assert loaded_after("neoactions.server.queue.redisstream", ADAPTER_LIBRARIES) == ["redis"]


def test_the_client_loads_nothing_of_the_server() -> None:
    server = ("neoactions.server", "celpy", "cel", "re2", "jinja2", "asyncpg", "redis", "wasmtime", "docker")
    assert loaded_after("neoactions.client", server) == []


def test_the_shared_domain_loads_nothing_of_the_server() -> None:
    for module in ("neoactions.domain.model", "neoactions.domain.convert", "neoactions.domain.status"):
        assert loaded_after(module, ("neoactions.server", "asyncpg", "redis", "wasmtime", "docker")) == []


def test_the_matching_package_still_exports_its_names() -> None:
    code = "from neoactions.server.matching import Matcher, MISSING, compile_trigger; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_the_in_memory_store_loads_no_database_driver() -> None:
    assert loaded_after("neoactions.server.persistence.memory", ("asyncpg", "aiosqlite", "redis")) == []
