"""What an HTTP response means for the attempt: classification, body, mapping out.

Pure functions (no I/O), so the retry classification is testable as a table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from neoactions.domain.model import JSON, JSONObject

#: a target may not park an execution for longer than this via Retry-After
MAX_RETRY_AFTER_MS = 24 * 3600 * 1000

#: response headers kept in the output unless the config names its own
DEFAULT_KEPT_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "etag",
    "retry-after",
    "request-id",
    "x-request-id",
    "idempotency-key",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A non-2xx status classified: the error type and whether a retry can help."""

    type: str
    retryable: bool
    retry_after_ms: int | None = None


def classify_status(status: int, retry_after: str | None = None, now: datetime | None = None) -> Verdict | None:
    """``None`` for 2xx; otherwise how the attempt failed.

    408, 429 and 5xx are the target saying "not now": retryable, honouring
    ``Retry-After``. Any other status (other 4xx, an unfollowed 3xx, 1xx) will
    not change by asking again.
    """
    if 200 <= status < 300:
        return None
    if status in (408, 429) or 500 <= status < 600:
        return Verdict(f"http_{status}", True, parse_retry_after(retry_after, now))
    return Verdict(f"http_{status}", False)


def parse_retry_after(value: str | None, now: datetime | None = None) -> int | None:
    """``Retry-After`` (delay-seconds or an HTTP-date) in milliseconds, capped; None if absent."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        ms = int(value) * 1000
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        ms = int(((when - (now or datetime.now(UTC))).total_seconds()) * 1000)
    return max(0, min(ms, MAX_RETRY_AFTER_MS))


def decode_body(content: bytes, content_type: str) -> JSON:
    """JSON when the response says so (and parses), else text; ``None`` when empty."""
    if not content:
        return None
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(content)
        except ValueError:
            pass
    charset = "utf-8"
    match = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def kept_headers(headers: Mapping[str, str], names: list[str] | None) -> dict[str, str]:
    """The subset of response headers that goes into the output."""
    wanted = [n.lower() for n in names] if names is not None else DEFAULT_KEPT_HEADERS
    return {n: headers[n] for n in wanted if n in headers}


_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def lookup(document: JSON, path: str) -> JSON:
    """Follow a small JSONPath (``$.body.items[0].id``, ``body.items.0.id``); None if absent."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    current = document
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"invalid path {path!r} at {position}")
        position = match.end()
        key, index = match.group(1), match.group(2)
        if isinstance(current, dict):
            current = current.get(key if key is not None else index)
        elif isinstance(current, list):
            raw = index if index is not None else key
            if not raw.lstrip("-").isdigit():
                return None
            i = int(raw)
            current = current[i] if -len(current) <= i < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def map_response(document: JSONObject, mapping: Mapping[str, str]) -> JSONObject:
    """``{output_key: path}`` applied to ``{status, headers, body}``."""
    return {key: lookup(document, path) for key, path in mapping.items()}


__all__ = [
    "DEFAULT_KEPT_HEADERS",
    "MAX_RETRY_AFTER_MS",
    "Verdict",
    "classify_status",
    "decode_body",
    "kept_headers",
    "lookup",
    "map_response",
    "parse_retry_after",
]
