"""JSON log lines: one JSON object per line on stderr, whatever the message, exception or logger.

Every record, the service's and third-party loggers' alike (aiosqlite logs SQL with quotes
and newlines, grpc reprs), goes through :class:`JsonLogFormatter`, which escapes the
message with ``json.dumps`` and puts a traceback or stack in a field of the same line.
Warnings and uncaught exceptions (main thread and other threads), which Python would
otherwise print as several raw lines, are routed through logging too.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from types import TracebackType
from typing import Any

from neoactions.server.secrets.masking import LOG_VALUES

#: the fields every line has, in this order
FIELDS = ("time", "level", "logger", "message")


class JsonLogFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "exception"][, "stack"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string or argument must not cost the line
            message = f"{record.msg!r} % {record.args!r}"
        entry: dict[str, Any] = {
            "time": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # the values of secrets attempts used lately never reach a log line, whoever logged them
        for key in ("message", "exception", "stack"):
            if key in entry:
                entry[key] = LOG_VALUES.mask(entry[key])
        # ASCII escapes keep the line writable whatever the stream's encoding (lone surrogates too)
        return json.dumps(entry, default=str)


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("neoactions").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    where = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("neoactions").error(
        "uncaught exception in %s",
        where,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


def configure_logging(level: str) -> None:
    """Log JSON lines at ``level`` to stderr (a no-op for the root logger if it has handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


__all__ = ["FIELDS", "JsonLogFormatter", "configure_logging"]
