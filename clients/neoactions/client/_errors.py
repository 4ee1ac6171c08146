"""The one place where gRPC failures become the neoactions error tree."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from neoactions.domain.status import from_rpc_error


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise a failed call as its :class:`~neoactions.domain.errors.NeoActionsError` class."""
    try:
        yield
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None


__all__ = ["translated"]
