"""Semantic versions and the version ranges actions and installs ask for.

A range is what npm and Cargo users write: ``1.2.3`` (exactly), ``^1.2`` (compatible:
``>=1.2.0 <2.0.0``; below 1.0 the minor is the breaking part), ``~1.2`` (``>=1.2.0
<1.3.0``), comparisons (``>=1.2.0``, ``<2``), several joined by spaces (all must hold),
alternatives joined by ``||``, and ``*``, ``latest`` or ``""`` for any version.
Pre-releases satisfy a range only when asked for by an exact version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import semver

_PARTIAL = re.compile(r"^v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_CLAUSE = re.compile(r"^(\^|~|>=|<=|>|<|=)?\s*(.+)$")

ANY = ("", "*", "latest")


class RangeError(ValueError):
    """A version or range that does not parse."""


def parse_version(text: str) -> semver.Version:
    """A full semantic version (``1.2.3``, ``1.2.3-rc.1``); ``RangeError`` otherwise."""
    try:
        return semver.Version.parse(text.removeprefix("v"))
    except (ValueError, TypeError):
        raise RangeError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)") from None


def is_version(text: str) -> bool:
    try:
        parse_version(text)
    except RangeError:
        return False
    return True


def _partial(text: str) -> tuple[int, int | None, int | None, str]:
    match = _PARTIAL.match(text)
    if match is None:
        raise RangeError(f"{text!r} is not a version or range")
    major, minor, patch, pre = match.groups()
    mi = int(minor) if minor and minor not in "xX*" else None
    pa = int(patch) if patch and patch not in "xX*" and mi is not None else None
    return int(major), mi, pa, pre or ""


_Bound = tuple[str, semver.Version]


def _clause(text: str) -> list[_Bound]:
    match = _CLAUSE.match(text)
    if match is None:
        raise RangeError(f"{text!r} is not a version or range")
    op, rest = match.group(1) or "", match.group(2).strip()
    if rest in ("*", "x", "X"):
        return []
    major, minor, patch, pre = _partial(rest)
    low = semver.Version(major, minor or 0, patch or 0, pre or None)
    if op == "^":
        if major > 0 or minor is None:
            high = semver.Version(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = semver.Version(0, minor + 1, 0)
        else:
            high = semver.Version(0, 0, (patch or 0) + 1)
        return [(">=", low), ("<", high)]
    if op == "~" or (op in ("", "=") and (minor is None or patch is None)):
        if minor is None:
            return [(">=", low), ("<", semver.Version(major + 1, 0, 0))]
        if op == "~" or patch is None:
            return [(">=", low), ("<", semver.Version(major, minor + 1, 0))]
    if op in ("", "="):
        return [("==", low)]
    if op in (">", "<=") and (minor is None or patch is None):
        # ``>1.2`` means above every 1.2.x; ``<=1.2`` includes them
        up = semver.Version(major + 1, 0, 0) if minor is None else semver.Version(major, minor + 1, 0)
        return [(">=", up)] if op == ">" else [("<", up)]
    return [(op, low)]


def _holds(bound: _Bound, version: semver.Version) -> bool:
    op, ref = bound
    c = version.compare(ref)
    return {"==": c == 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0}[op]


class VersionRange:
    """A parsed range; :meth:`allows` tests a version, :meth:`best` picks the newest allowed."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self._alternatives: list[list[_Bound]] = []
        if self.text in ANY:
            self._alternatives = [[]]
            return
        for alternative in self.text.split("||"):
            parts = re.sub(r"(\^|~|>=|<=|>|<|=)\s+", r"\1", alternative.strip()).split()
            if not parts:
                raise RangeError(f"{self.text!r}: an empty alternative")
            bounds: list[_Bound] = []
            for part in parts:
                bounds += _clause(part)
            self._alternatives.append(bounds)

    def allows(self, version: str | semver.Version) -> bool:
        v = version if isinstance(version, semver.Version) else parse_version(version)
        for bounds in self._alternatives:
            if v.prerelease and not any(op == "==" and ref == v for op, ref in bounds):
                continue
            if all(_holds(b, v) for b in bounds):
                return True
        return False

    def best(self, versions: Iterable[str]) -> str | None:
        """The newest of ``versions`` (full semantic versions; others are skipped) it allows."""
        allowed = [(parse_version(v), v) for v in versions if is_version(v) and self.allows(v)]
        return max(allowed)[1] if allowed else None

    def __str__(self) -> str:
        return self.text or "*"


def parse_range(text: str) -> VersionRange:
    """``RangeError`` when ``text`` is neither a version nor a range."""
    return VersionRange(text)


def newest(versions: Iterable[str]) -> str | None:
    """The newest full semantic version among ``versions`` (pre-releases included)."""
    parsed = [(parse_version(v), v) for v in versions if is_version(v)]
    return max(parsed)[1] if parsed else None


__all__ = ["ANY", "RangeError", "VersionRange", "is_version", "newest", "parse_range", "parse_version"]
