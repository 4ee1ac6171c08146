"""JSON log lines: one JSON object per line on stderr, whatever the message, exception or logger.

Every record, the service's and third-party loggers' alike (aiosqlite logs SQL with quotes
and newlines, grpc reprs), goes through :class:`JsonLogFormatter`, which escapes the
message with ``json.dumps`` and puts a traceback or stack in a field of the same line.
Warnings and uncaught exceptions (main thread and other threads), which Python would
otherwise print as several raw lines, are routed through logging too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from types import TracebackType
from typing import Any

from opentelemetry import trace

from neoactions.server.secrets.masking import LOG_VALUES

#: the fields every line has, in this order
FIELDS = ("time", "level", "logger", "message")
#: fields a line has when it is logged about an execution (its attempt binds them, see
#: :func:`bind`), and trace and span ids while a span is current (tracing on)
CONTEXT_FIELDS = ("tenant", "execution_id", "correlation_id", "trace_id", "span_id")

#: what the current task works on: the fields of :data:`CONTEXT_FIELDS` it knows
_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("neoactions_log", default=None)
#: log event data and handler output (the ``log_payloads`` setting; off: never)
PAYLOADS = [False]


def bind(**fields: str) -> None:
    """Tie this task's log lines to an execution (``tenant``, ``execution_id``,
    ``correlation_id``); ``bind()`` with nothing unties them."""
    _CONTEXT.set({k: v for k, v in fields.items() if v} or None)


def context_fields() -> dict[str, str]:
    """The context fields of a line logged now."""
    out = dict(_CONTEXT.get() or {})
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        out["trace_id"], out["span_id"] = f"{span.trace_id:032x}", f"{span.span_id:016x}"
    return out


def payload(value: object) -> object:
    """``value`` when payloads may be logged, else a placeholder saying it was left out."""
    return value if PAYLOADS[0] else "[not logged: log_payloads is off]"


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
        entry.update(context_fields())
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


class TextLogFormatter(JsonLogFormatter):
    """One line for people: ``time level logger [tenant execution trace] message``; the
    exception (or stack) follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = json.loads(super().format(record))
        ids = " ".join(entry[k] for k in ("tenant", "execution_id", "trace_id") if entry.get(k))
        line = f"{entry['time']} {entry['level']:<8} {entry['logger']}{f' [{ids}]' if ids else ''} {entry['message']}"
        extra = entry.get("exception") or entry.get("stack")
        return f"{line}\n{extra}" if extra else line


def configure_logging(level: str, fmt: str = "json", payloads: bool = False) -> None:
    """Log at ``level`` to stderr (a no-op for the root logger if it has handlers): JSON lines,
    or text for people (``fmt`` ``text``, or ``auto`` when stderr is a terminal). With
    ``payloads``, event data and handler output may be logged (debugging only)."""
    PAYLOADS[0] = payloads
    text = fmt == "text" or (fmt == "auto" and sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(TextLogFormatter() if text else JsonLogFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


__all__ = [
    "CONTEXT_FIELDS",
    "FIELDS",
    "JsonLogFormatter",
    "TextLogFormatter",
    "bind",
    "configure_logging",
    "context_fields",
    "payload",
]
