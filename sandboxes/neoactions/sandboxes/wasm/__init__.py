"""The ``wasm`` handler type: untrusted custom code under wasmtime.

An action's config gives either ``language`` (``javascript`` or ``python``) and
``source``, or ``module`` (the sha256 of a WASI command module in the module
directory), plus optional ``limits``. JavaScript runs on QuickJS-NG and Python on
CPython 3.12, both WebAssembly builds installed from PyPI and verified against
pinned digests. The code defines ``main(input)`` with
``input = {config, data, context}`` and returns JSON; console output becomes log
updates. See ``docs/runners/wasm.md`` for the calling convention, limits and the
security model.
"""

from __future__ import annotations

from neoactions.sandboxes.wasm.config import CONFIG_SCHEMA, Limits, Program
from neoactions.sandboxes.wasm.engine import WasmEngine
from neoactions.sandboxes.wasm.runner import WasmRunner, register
from neoactions.sandboxes.wasm.runtimes import CPYTHON, QUICKJS, RUNTIMES, RuntimeBuild

__all__ = [
    "CONFIG_SCHEMA",
    "CPYTHON",
    "QUICKJS",
    "RUNTIMES",
    "Limits",
    "Program",
    "RuntimeBuild",
    "WasmEngine",
    "WasmRunner",
    "register",
]
