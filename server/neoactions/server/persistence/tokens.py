"""Opaque page tokens for keyset pagination.

A token is the urlsafe base64 (no padding) of ``{"k": kind, "v": [sort key...]}``: the
kind of list it belongs to and the sort key of the last item of the previous page
(strings and integers only; times are integer microseconds since the epoch, UTC, so a
token means the same thing to every store). Clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json

from neoactions.domain.errors import InvalidArgument

KeyPart = str | int

INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"


def encode(kind: str, key: list[KeyPart]) -> str:
    """The token that resumes a ``kind`` listing after the item whose sort key is ``key``."""
    raw = json.dumps({"k": kind, "v": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(kind: str, token: str, shape: tuple[type, ...]) -> list[KeyPart] | None:
    """The sort key in ``token``, or ``None`` for the first page (empty token).

    ``shape`` gives the type of each key part; anything else is ``InvalidArgument``
    (INVALID_PAGE_TOKEN), including a token of another kind of list.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if not isinstance(doc, dict) or doc.get("k") != kind:
        raise _invalid()
    key = doc.get("v")
    if not isinstance(key, list) or len(key) != len(shape):
        raise _invalid()
    for part, expected in zip(key, shape, strict=True):
        # bool is an int subclass, never a valid key part
        if type(part) is not expected:
            raise _invalid()
    return key


def _invalid() -> InvalidArgument:
    return InvalidArgument.field("page_token", "not a page token of this list", reason=INVALID_PAGE_TOKEN)


__all__ = ["INVALID_PAGE_TOKEN", "KeyPart", "decode", "encode"]
