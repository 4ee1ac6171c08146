"""Who is calling: the :class:`~neoactions.server.access.Caller` of a gRPC call, from its metadata."""

from __future__ import annotations

import grpc

from neoactions.server.access import Caller

#: metadata key a client may set to tie its call to its own logs (and later the audit log)
REQUEST_ID = "x-request-id"
_MAX_REQUEST_ID = 128


def caller_of(context: grpc.aio.ServicerContext) -> Caller:
    """The caller of this call. Without authentication every caller is anonymous; the
    request id, if sent, travels with it."""
    request_id = ""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID and isinstance(value, str):
            request_id = value[:_MAX_REQUEST_ID]
    return Caller(request_id=request_id)


__all__ = ["REQUEST_ID", "caller_of"]
