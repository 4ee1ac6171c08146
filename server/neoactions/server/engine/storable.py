"""What an attempt's outcome must be for every store to hold it.

An attempt's finish is written in a group commit with other attempts' finishes: an outcome
the store refuses (output that is not JSON, ``NaN``, a NUL character or a lone surrogate
that PostgreSQL will not take, a ``retry_after_ms`` past a 64-bit integer) would fail the
whole batch, leave every attempt in it unrecorded and running, to be resumed and run again
— forever, for the one that cannot be stored. So an outcome is made storable first: output
that cannot be stored fails the attempt (``invalid_output``, not retryable); text of an
error is cleaned.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TypeVar

from neoactions.domain.model import JSON, ExecutionError
from neoactions.server.retry import MAX_RETRY_DELAY_MS
from neoactions.server.runners import Failure, Result

#: ``\\u0000`` in JSON text that is an escaped NUL (an odd number of backslashes before ``u0000``)
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


_Outcome = TypeVar("_Outcome")


def storable(outcome: _Outcome) -> _Outcome | Failure:
    """``outcome``, or what stands in for it when a store could not hold it (an outcome that
    is neither a result nor a failure is returned as it is)."""
    if isinstance(outcome, Result):
        problem = _unstorable(outcome.output)
        if problem is None:
            return outcome
        return Failure.of("invalid_output", f"the attempt's output cannot be stored: {problem}")
    if not isinstance(outcome, Failure):
        return outcome
    error = outcome.error
    clean = _clean_error(error)
    return outcome if clean is error else replace(outcome, error=clean)


def _unstorable(output: JSON) -> str | None:
    if output is None or isinstance(output, bool | int):
        return None
    try:
        text = json.dumps(output, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"not JSON ({exc})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it holds a lone surrogate (not Unicode text)"
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        return "it holds a NUL character"
    return None


def _clean_text(text: object) -> str:
    if not isinstance(text, str):
        text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _clean_error(error: ExecutionError) -> ExecutionError:
    type_, message, stack = _clean_text(error.type), _clean_text(error.message), _clean_text(error.stack)
    after = error.retry_after_ms
    if after is not None and not 0 <= after <= MAX_RETRY_DELAY_MS:
        after = int(MAX_RETRY_DELAY_MS) if after > 0 else None
    if after == error.retry_after_ms and (type_, message, stack) == (error.type, error.message, error.stack):
        return error
    return replace(error, type=type_, message=message, stack=stack, retry_after_ms=after)


__all__ = ["storable"]
