"""Masking secret values (``***``) in what an attempt produces, and in log lines.

A :class:`Masker` holds the values of the secrets one attempt's config used; everything
that attempt hands back — output, error, logs, progress messages — passes through it
before it is stored or streamed. The value is also masked as it appears inside JSON text
(quotes and backslashes escaped) or percent-encoded, and short values are masked too: a
short secret is still a secret. :data:`LOG_VALUES` keeps the values resolved recently in this process so
the JSON log formatter can mask them in any line, whoever logged it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"


def _forms(value: str) -> set[str]:
    """The value and the ways it appears inside text that carried it: JSON-escaped, and
    percent-encoded (a URL's query or path, a form body)."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {quote(value, safe=""), quote_plus(value, safe="")}
    return {f for f in forms if f}


class Masker:
    """Replaces every given secret value by ``***`` in strings, recursively in JSON values."""

    __slots__ = ("_forms",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for value in values:
            if value:
                found |= _forms(value)
        # longest first: a value containing another is masked whole
        self._forms = tuple(sorted(found, key=lambda f: (-len(f), f)))

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def json(self, value: Any) -> Any:
        """``value`` (a JSON value) with every string, keys included, masked."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(v) for v in value]
        return value


NO_MASK = Masker()


class RecentValues:
    """Secret values resolved in this process lately (bounded, forgotten after a while),
    for masking log lines."""

    def __init__(self, keep_seconds: float = 3600.0, limit: int = 4096) -> None:
        self._keep = keep_seconds
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._masker = NO_MASK

    def remember(self, values: Iterable[str]) -> None:
        now = time.monotonic()
        with self._lock:
            changed = False
            for value in values:
                if not value:
                    continue
                changed |= value not in self._seen
                self._seen[value] = now
                self._seen.move_to_end(value)
            while self._seen and (len(self._seen) > self._limit or next(iter(self._seen.values())) < now - self._keep):
                self._seen.popitem(last=False)
                changed = True
            if changed:
                self._masker = Masker(self._seen)

    def forget(self, value: str) -> None:
        with self._lock:
            if self._seen.pop(value, None) is not None:
                self._masker = Masker(self._seen)

    def mask(self, text: str) -> str:
        masker = self._masker
        return masker.text(text) if masker else text


#: what the log formatter masks (see :mod:`neoactions.server.logjson`)
LOG_VALUES = RecentValues()


__all__ = ["LOG_VALUES", "MASK", "NO_MASK", "Masker", "RecentValues"]
