"""Log lines are JSON objects, one per line, whatever the message, the exception or the logger."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from neoactions.server.logjson import FIELDS, JsonLogFormatter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("test.logjson")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    out = stream.getvalue().splitlines()
    assert out, "nothing was logged"
    return [json.loads(line) for line in out]


HOSTILE = [
    'say "hi"',
    "back\\slash",
    "two\nlines\r\nand a tab\t",
    "control \x00\x1b[31m",
    "é ✓ 🙂",
    "lone surrogate \udcff",
    '{"time":"forged"}',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_any_message_is_one_json_line_and_round_trips(captured: tuple[logging.Logger, io.StringIO], text: str) -> None:
    logger, stream = captured
    logger.debug("value %s", text)
    [entry] = lines(stream)
    assert tuple(entry)[: len(FIELDS)] == FIELDS
    assert entry["message"] == f"value {text}"
    assert (entry["level"], entry["logger"]) == ("DEBUG", "test.logjson")
    stream.getvalue().encode("ascii")  # writable on any stream encoding


def test_exceptions_and_stacks_stay_on_the_line(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError('bad "thing"\nsecond line')
    except ValueError:
        logger.exception("failed")
    logger.warning("where", stack_info=True)
    failed, where = lines(stream)
    assert failed["message"] == "failed" and failed["level"] == "ERROR"
    assert failed["exception"].startswith("Traceback") and 'ValueError: bad "thing"\nsecond line' in failed["exception"]
    assert where["stack"].startswith("Stack (most recent call last)")


def test_a_bad_format_call_still_gives_a_line() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("not a number",), None)
    entry = json.loads(JsonLogFormatter().format(record))
    assert "not a number" in entry["message"] and "%d items" in entry["message"]


def test_a_process_logs_only_json_lines() -> None:
    """Third-party loggers, warnings and uncaught exceptions (thread and main) included."""
    script = textwrap.dedent(
        """
        import logging, threading, warnings
        from neoactions.server.logjson import configure_logging
        configure_logging("debug")
        logging.getLogger("aiosqlite").debug("executing %r", 'SELECT "a"\\nFROM t')
        warnings.warn("careful\\nnow")
        thread = threading.Thread(target=lambda: 1 / 0, name="worker")
        thread.start()
        thread.join()
        raise RuntimeError("the end")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert [e["logger"] for e in entries] == ["aiosqlite", "py.warnings", "neoactions", "neoactions"]
    assert entries[0]["message"] == "executing 'SELECT \"a\"\\nFROM t'"
    assert "ZeroDivisionError" in entries[2]["exception"] and "worker" in entries[2]["message"]
    assert entries[3]["level"] == "CRITICAL" and "RuntimeError: the end" in entries[3]["exception"]
