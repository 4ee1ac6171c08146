"""Who is calling: the :class:`~neoactions.server.access.Caller` of a gRPC call.

The authentication interceptor (:mod:`neoactions.server.api.authz`) establishes it before the
method runs; a server without it (unit tests with open access) has anonymous callers.
"""

from __future__ import annotations

import grpc

from neoactions.server.access import Caller
from neoactions.server.api.authz import CURRENT_CALLER, REQUEST_ID, credentials


def caller_of(context: grpc.aio.ServicerContext) -> Caller:
    """The caller of this call, as the interceptor authenticated it; without one,
    anonymous (the request id, if sent, travels with it)."""
    caller = CURRENT_CALLER.get()
    if caller is not None:
        return caller
    _, request_id = credentials(context.invocation_metadata())
    return Caller(request_id=request_id)


__all__ = ["REQUEST_ID", "caller_of"]
