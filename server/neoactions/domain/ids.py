"""Identifiers: UUIDv7 (time-ordered), so ids sort by creation and index well."""

from __future__ import annotations

import uuid

import uuid_utils


def new_id() -> str:
    """A new UUIDv7 as its canonical 36-character string."""
    return str(uuid_utils.uuid7())


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True
