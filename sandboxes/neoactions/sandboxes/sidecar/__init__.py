"""The ``sidecar`` handler type: a Handler gRPC server at an address, in any language.

The server speaks ``neoactions.handler.v1.Handler`` (``proto/neoactions/handler/v1``);
the Python and Node.js SDKs in ``plugins/`` serve it. Each attempt is one
``Execute`` call whose gRPC deadline is the attempt's deadline, with the trace
context as ``traceparent``/``tracestate`` metadata. Addresses pass the http
runner's address policy or are endpoints the operator registered
(:mod:`.address`). Channels are reused per address and closed once idle; a
``Check`` runs before a call when none passed recently. A handler that cannot
be reached, is not serving or is not a Handler server fails the attempt as
retryable ``handler_unavailable`` with one message whatever the cause; an
expired deadline is a timed-out attempt.
"""

from __future__ import annotations

from neoactions.sandboxes.sidecar.client import (
    Description,
    HandlerClient,
    HandlerUnavailable,
    wait_serving,
)
from neoactions.sandboxes.sidecar.runner import CONFIG_SCHEMA, SidecarRunner, register

__all__ = [
    "CONFIG_SCHEMA",
    "Description",
    "HandlerClient",
    "HandlerUnavailable",
    "SidecarRunner",
    "register",
    "wait_serving",
]
