"""The ``python`` handler type: trusted in-process handlers named ``module:attr``.

A handler is a function ``fn(config, data, ctx)`` or a class whose instances have
``execute(self, config, data, ctx)``; either may be sync or async. Sync handlers
run in a bounded thread pool, off the event loop. ``ctx`` is a
:class:`HandlerContext`: the execution's identity plus ``log()`` and
``progress()`` that stream to watchers. Raising fails the attempt; raise
:class:`NonRetryableError` to fail it without retries.
"""

from __future__ import annotations

from neoactions.sandboxes.python.runner import (
    CONFIG_SCHEMA,
    HandlerContext,
    NonRetryableError,
    PythonRunner,
    register,
)

__all__ = ["CONFIG_SCHEMA", "HandlerContext", "NonRetryableError", "PythonRunner", "register"]
