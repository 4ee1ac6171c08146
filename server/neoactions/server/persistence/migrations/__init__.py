"""Versioned SQL migrations, shipped as package data and read with ``importlib.resources``.

Two tracks per dialect: ``tenant`` (``<dialect>/NNNN_name.sql``, applied to every tenant,
admin included) and ``admin`` (``<dialect>/admin/NNNN_name.sql``, the tenant registry,
applied to the admin tenant only). Each schema/file records what it has applied in its
own ``schema_migrations`` table, keyed by (track, version).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources

TENANT_TRACK = "tenant"
ADMIN_TRACK = "admin"

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    track: str
    version: int
    #: the file stem, e.g. ``0001_init``; safe to embed in SQL (checked by ``_NAME``)
    name: str
    sql: str


@cache
def load(dialect: str, track: str) -> tuple[Migration, ...]:
    """The migrations of one dialect (``sqlite``/``postgres``) and track, in version order."""
    folder = resources.files(__package__).joinpath(dialect)
    if track == ADMIN_TRACK:
        folder = folder.joinpath("admin")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        found.append(Migration(track, int(match.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {dialect}/{track}: {versions}")
    return tuple(found)


def split_statements(sql: str) -> list[str]:
    """The statements of a migration script, for drivers that run one statement per call.

    A statement ends at the end of a line where SQLite's tokenizer sees a complete
    statement, so semicolons inside strings or comments do not split it.
    """
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    rest = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if rest:
        raise RuntimeError(f"migration ends in an incomplete statement: {rest[0]!r}")
    return statements


__all__ = ["ADMIN_TRACK", "TENANT_TRACK", "Migration", "load", "split_statements"]
