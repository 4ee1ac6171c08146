"""Shared test plumbing.

Tests that need a real service (PostgreSQL, Redis, Docker, ...) call
:func:`require_service`: on a developer machine without the service they skip,
under ``CI=true`` they fail, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_DSN = os.environ.get("NEOACTIONS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NEOACTIONS_TEST_REDIS", "redis://127.0.0.1:6379/0")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, available: bool, why: str = "") -> None:
    """Skip when ``name`` is missing on a laptop; fail under CI=true."""
    if available:
        return
    message = f"{name} is not available{': ' + why if why else ''}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are required)")
    pytest.skip(message)


def require_postgres() -> None:
    require_service("PostgreSQL", port_open("127.0.0.1", 5432), "127.0.0.1:5432")


def require_redis() -> None:
    require_service("Redis", port_open("127.0.0.1", 6379), "127.0.0.1:6379")
