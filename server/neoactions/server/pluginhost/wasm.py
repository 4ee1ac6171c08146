"""Handler types of ``wasm`` plugins, run by the server's own ``wasm`` runner.

A JavaScript plugin (QuickJS with its source in a custom section, see
:mod:`neoactions.plugins.wasmjs`) runs its source on the runner's compiled QuickJS; any other
module is a WASI command module, written once into the runner's module directory under its
digest. Either way the guest has no filesystem, no network and no environment (the wasm
runner's sandbox), and the manifest's memory and time ceilings become its limits (never
above the operator's maxima).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.domain.model import JSON, JSONObject
from neoactions.plugins import wasmjs
from neoactions.plugins.manifest import HandlerTypeSpec, Manifest
from neoactions.server.runners import (
    ConfigValidator,
    ExecutionContext,
    HandlerRegistry,
    HandlerType,
    Runner,
    RunnerUpdate,
)
from neoactions.server.secrets.references import referenced_secrets

#: the guest config keys the plugin host sets (an action's own config may not)
RESERVED_KEYS = frozenset({"language", "source", "module", "limits"})


@cache
def _quickjs() -> tuple[str, int]:
    from neoactions.sandboxes.wasm.runtimes import QUICKJS

    return QUICKJS.sha256, len(wasmjs.quickjs_runtime())


class WasmPluginRunner:
    """One handler type of a wasm plugin: the action's config plus the plugin's program."""

    def __init__(self, runner: Runner, program: JSONObject) -> None:
        self._runner = runner
        self._program = program

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        guest = {k: v for k, v in config.items() if k not in RESERVED_KEYS}
        guest.update(self._program)
        async for update in self._runner.execute(guest, data, ctx):
            yield update


def _limits(manifest: Manifest, settings: Any) -> JSONObject:
    caps = manifest.capabilities
    limits: JSONObject = {}
    if caps.memory_mb is not None:
        limits["memory_mb"] = min(caps.memory_mb, int(settings.get("wasm_max_memory_mb", 512)))
    if caps.timeout_seconds is not None:
        limits["timeout_seconds"] = min(caps.timeout_seconds, float(settings.get("wasm_max_timeout_seconds", 60.0)))
    return limits


def _write_module(module_dir: Path, digest: str, artifact: bytes) -> None:
    path = module_dir / f"{digest}.wasm"
    if path.is_file():
        return
    module_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=module_dir, prefix=f".{digest}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(artifact)
    os.replace(tmp, path)


async def wasm_handler_types(
    manifest: Manifest, artifact: bytes, registry: HandlerRegistry, grants: Sequence[str] = ()
) -> list[HandlerType]:
    """The handler types of a verified wasm plugin, not yet registered."""
    if "wasm" not in registry:
        raise FailedPrecondition("this server has no wasm runner: it cannot run wasm plugins", reason="NO_WASM_RUNNER")
    base = registry.get("wasm", version="")
    runtime_sha, runtime_size = await asyncio.to_thread(_quickjs)
    source = wasmjs.unpack(artifact, runtime_sha, runtime_size)
    program: JSONObject
    if source is not None:
        program = {"language": "javascript"}
    else:
        module_dir: Path = base.runner.engine.module_dir  # type: ignore[attr-defined]
        await asyncio.to_thread(_write_module, module_dir, manifest.artifact_sha256, artifact)
        program = {"module": manifest.artifact_sha256}
    limits = _limits(manifest, registry.settings)
    if limits:
        program["limits"] = limits
    guard = secrets_guard(manifest.name, [g.removeprefix("secret:") for g in grants if g.startswith("secret:")])
    return [_handler_type(manifest, spec, base.runner, program, source, guard) for spec in manifest.handler_types]


def secrets_guard(plugin: str, granted: Sequence[str]) -> ConfigValidator:
    """A config check: the config may name (``{{ secrets.NAME }}``) only the secrets granted
    to the plugin at install; an action naming another is refused when it is saved."""
    allowed = frozenset(granted)

    def check(config: JSONObject) -> None:
        for field, names in referenced_secrets(config, "config").items():
            refused = sorted(names - allowed)
            if refused:
                raise InvalidArgument.field(
                    field.removeprefix("config."),
                    f"plugin {plugin} was not granted the secret(s) {', '.join(refused)}"
                    f" (granted: {', '.join(sorted(allowed)) or 'none'})",
                    reason="PLUGIN_SECRET_NOT_GRANTED",
                )

    return check


def _handler_type(
    manifest: Manifest,
    spec: HandlerTypeSpec,
    runner: Runner,
    program: JSONObject,
    source: str | None,
    guard: ConfigValidator,
) -> HandlerType:
    own = dict(program)
    if source is not None:
        # the manifest names the function to call; ``main`` (or a default export) otherwise
        pick = "" if spec.function == "main" else f"\n;__neoactions_default = {spec.function};\n"
        own["source"] = source + pick
    schema = dict(spec.config_schema)
    return HandlerType(
        name=spec.name,
        runner=WasmPluginRunner(runner, own),
        version=manifest.version,
        config_schema=schema,
        description=spec.description or manifest.description,
        validate=guard,
    )


def program_summary(program: JSONObject) -> str:
    return json.dumps({k: v for k, v in program.items() if k != "source"})


__all__ = ["RESERVED_KEYS", "WasmPluginRunner", "wasm_handler_types"]
