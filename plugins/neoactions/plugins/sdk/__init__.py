"""The Python SDK for handler sidecars: write a function, serve the Handler protocol.

::

    from neoactions.plugins.sdk import handler, serve

    @handler(name="greet", version="1.0.0", config_schema={"type": "object"})
    async def greet(config, data, ctx):
        ctx.log(f"greeting {data['name']}")
        return {"greeting": f"{config.get('salutation', 'Hello')}, {data['name']}"}

    if __name__ == "__main__":
        serve(greet, port=50071)

A handler gets the action's rendered ``config``, the input ``data`` and a
:class:`HandlerContext` (tenant, execution id, attempt, idempotency key,
deadline, trace context, ``log()``, ``progress()``). Sync functions run in a
worker thread. Returning ends the attempt with that output; raising fails it
(:class:`NonRetryableError` or ``HandlerError(retryable=False)`` for no retries).
The SDK depends only on grpcio and protobuf, so it runs inside any container.
"""

from __future__ import annotations

from neoactions.plugins.sdk.handler import (
    FunctionHandler,
    Handler,
    HandlerContext,
    HandlerError,
    NonRetryableError,
    handler,
)
from neoactions.plugins.sdk.server import (
    ADDRESS_ENV,
    DEFAULT_PORT,
    PORT_ENV,
    HandlerServicer,
    serve,
    serve_async,
    start_server,
)

__all__ = [
    "ADDRESS_ENV",
    "DEFAULT_PORT",
    "PORT_ENV",
    "FunctionHandler",
    "Handler",
    "HandlerContext",
    "HandlerError",
    "HandlerServicer",
    "NonRetryableError",
    "handler",
    "serve",
    "serve_async",
    "start_server",
]
