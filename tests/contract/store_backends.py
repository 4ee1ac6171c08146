"""Where each store implementation under contract test keeps its data."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

from neoactions.server.persistence import PostgresStore, SqliteStore, SqlStore
from neoactions.server.persistence.memory import MemoryData, MemoryStore

#: a store under contract test
ContractStore = SqlStore | MemoryStore


def _root_conftest() -> ModuleType:
    # tests/ is not a package: ``import conftest`` would get whichever conftest pytest loaded last
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("neoactions_tests_root_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ROOT = _root_conftest()
POSTGRES_DSN: str = _ROOT.POSTGRES_DSN
require_postgres = _ROOT.require_postgres


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@dataclass(frozen=True)
class Backend:
    """Where one store implementation keeps its data; ``make`` builds a new, unopened store on it
    (several stores made by one backend share its data, as processes share a database)."""

    kind: str
    location: str
    #: the data of the in-memory stores
    memory: MemoryData = field(default_factory=MemoryData, compare=False)

    def make(self) -> ContractStore:
        if self.kind == "postgres":
            return PostgresStore(self.location, max_size=4)
        if self.kind == "memory":
            return MemoryStore(self.memory)
        return SqliteStore(self.location)
