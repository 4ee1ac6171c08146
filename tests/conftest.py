"""Shared test plumbing.

Tests that need a real service (PostgreSQL, Redis, Docker, ...) call
:func:`require_service`: on a developer machine without the service they skip,
under ``CI=true`` they fail, so CI can never go green by skipping.

Tests never sleep a fixed time to let something happen: they poll for it with
:func:`eventually` (async) or :func:`eventually_sync`.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.keys import new_token

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_DSN = os.environ.get("NEOACTIONS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NEOACTIONS_TEST_REDIS", "redis://127.0.0.1:6379/0")


# Every server the tests start creates its first admin key from this file (when its store has
# no key yet), and every client and CLI run sends that key: the suite works with API keys as a
# deployment does. Tests of the bootstrap itself unset these variables.
_KEY_DIR = Path(tempfile.mkdtemp(prefix="neoactions-tests-"))
atexit.register(shutil.rmtree, _KEY_DIR, True)
SESSION_KEY = new_token()[0]
SESSION_KEY_FILE = _KEY_DIR / "admin.key"
SESSION_KEY_FILE.write_text(SESSION_KEY + "\n")
SESSION_KEY_FILE.chmod(0o600)
os.environ["NEOACTIONS_BOOTSTRAP_KEY_FILE"] = str(SESSION_KEY_FILE)
os.environ["NEOACTIONS_API_KEY"] = SESSION_KEY


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


# --- waiting for a condition: poll, never sleep a fixed time ---------------------------------

#: what a check may be: a function returning a value (truthy when the condition holds) or
#: raising ``AssertionError`` while it does not hold yet; for ``eventually`` it may be async
Check = Callable[[], Any]


def _not_yet(value: Any, error: AssertionError | None, within: float, what: str) -> AssertionError:
    name = what or "the condition"
    last = f"last check raised: {error}" if error is not None else f"last value: {value!r}"
    return AssertionError(f"{name} did not hold within {within:g}s ({last})"[:2000])


async def eventually(
    check: Check,
    *,
    within: float = 5.0,
    interval: float = 0.02,
    what: str = "",
    until: Callable[[Any], object] | None = None,
) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value, and return that value.

    With ``until``, the value is returned once ``until(value)`` is true instead (a probe and
    a condition on what it saw). A check may also assert: an ``AssertionError`` counts as
    "not yet". When ``within`` seconds pass first, raise ``AssertionError`` naming ``what``
    and the last value or error. The check always runs at least once, and once more at the
    end of the time.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        last_try = loop.time() >= end
        value: Any = None
        held: object = None
        error: AssertionError | None = None
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            held = until(value) if until is not None else value
        except AssertionError as exc:
            error = exc
        if error is None and held:
            return value
        if last_try:
            raise _not_yet(value, error, within, what)
        await asyncio.sleep(min(interval, max(0.0, end - loop.time())))


def eventually_sync(
    check: Check,
    *,
    within: float = 5.0,
    interval: float = 0.02,
    what: str = "",
    until: Callable[[Any], object] | None = None,
) -> Any:
    """:func:`eventually` for code without an event loop (blocking checks, threads, processes)."""
    end = time.monotonic() + within
    while True:
        last_try = time.monotonic() >= end
        value: Any = None
        held: object = None
        error: AssertionError | None = None
        try:
            value = check()
            held = until(value) if until is not None else value
        except AssertionError as exc:
            error = exc
        if error is None and held:
            return value
        if last_try:
            raise _not_yet(value, error, within, what)
        time.sleep(min(interval, max(0.0, end - time.monotonic())))
