"""The Python sidecar test handler, served inside the python-sidecar test image.

Behaviour by ``input.mode``: ``echo`` (default) returns what it got with the
container's host name (to tell containers apart), ``sleep`` sleeps
``input.seconds``, ``mem`` allocates until the memory limit kills the container,
``fail`` raises a non-retryable error.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from neoactions.plugins.sdk import HandlerContext, NonRetryableError, handler, serve


@handler(
    name="python-test-sidecar",
    version="1.0.0",
    description="echo, sleep, mem and fail for neoactions' container tests",
    config_schema={"type": "object", "properties": {"greeting": {"type": "string"}}},
    capabilities=["streaming-logs"],
)
async def test_handler(config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
    mode = data.get("mode", "echo") if isinstance(data, dict) else "echo"
    ctx.log(f"mode {mode}, attempt {ctx.attempt}")
    if mode == "sleep":
        await asyncio.sleep(float(data.get("seconds", 60)))
        return {"slept": True}
    if mode == "mem":
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))
            await asyncio.sleep(0)
    if mode == "fail":
        raise NonRetryableError("asked to fail")
    ctx.progress(0.5, "half way")
    return {
        "echo": data,
        "greeting": config.get("greeting", ""),
        "host": socket.gethostname(),
        "tenant": ctx.tenant,
        "execution_id": ctx.execution_id,
        "idempotency_key": ctx.idempotency_key,
        "traceparent": ctx.trace_context.get("traceparent", ""),
        "remaining_seconds": ctx.remaining_seconds(),
    }


if __name__ == "__main__":
    serve(test_handler)
