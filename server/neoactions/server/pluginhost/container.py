"""Handler types of ``container`` plugins, run by the server's own ``container`` runner.

The artifact is a ``docker save`` archive. Each process writes it once into
``<data_dir>/plugins/images/<sha256>.tar`` (from the store); the container runner loads it
with ``docker load`` the first time a handler type runs, after checking its sha256 again.
The container runs hardened as every container does (no capabilities, no new privileges,
read-only root, non-root user, pids/memory/cpu limits) and has **no network** unless the
operator granted the egress the manifest requests; the action's config reaches the
handler as its own config (``config`` on stdin, or ``config_json`` for a sidecar).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from neoactions.domain.errors import FailedPrecondition
from neoactions.domain.model import JSON, JSONObject
from neoactions.plugins.manifest import HandlerTypeSpec, Manifest
from neoactions.server.pluginhost.wasm import secrets_guard
from neoactions.server.runners import (
    ConfigValidator,
    ExecutionContext,
    HandlerRegistry,
    HandlerType,
    Runner,
    RunnerUpdate,
)


class ContainerPluginRunner:
    """One handler type of a container plugin: the plugin's image and limits, the action's config."""

    def __init__(self, runner: Runner, program: JSONObject) -> None:
        self._runner = runner
        self._program = program

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        async for update in self._runner.execute({**self._program, "config": config}, data, ctx):
            yield update


def _write_archive(folder: Path, digest: str, artifact: bytes) -> Path:
    path = folder / f"{digest}.tar"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{digest}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(artifact)
        os.replace(tmp, path)
    return path


async def container_handler_types(
    manifest: Manifest, artifact: bytes, registry: HandlerRegistry, grants: Sequence[str] = ()
) -> list[HandlerType]:
    """The handler types of a verified container plugin, not yet registered."""
    if "container" not in registry:
        raise FailedPrecondition(
            "this server has no container runner: it cannot run container plugins", reason="NO_CONTAINER_RUNNER"
        )
    base = registry.get("container", version="")
    data_dir = Path(str(registry.settings.get("data_dir") or Path(tempfile.gettempdir()) / "neoactions"))
    path = await asyncio.to_thread(_write_archive, data_dir / "plugins" / "images", manifest.artifact_sha256, artifact)
    caps = manifest.capabilities
    # the container runner gives a container the bridge network or none: any granted egress
    # host gives the bridge (host names are not filtered one by one)
    network = bool(caps.network) and all(f"net:{h}" in grants for h in caps.network)
    guard = secrets_guard(manifest.name, [g.removeprefix("secret:") for g in grants if g.startswith("secret:")])
    types = []
    for spec in manifest.handler_types:
        program: JSONObject = {
            "archive": {"path": str(path), "sha256": manifest.artifact_sha256},
            "mode": spec.mode,
            "network": network,
        }
        if caps.memory_mb is not None:
            program["memory_mb"] = max(6, caps.memory_mb)
        if caps.cpu is not None:
            program["cpus"] = caps.cpu
        types.append(_handler_type(manifest, spec, base.runner, program, guard))
    return types


def _handler_type(
    manifest: Manifest, spec: HandlerTypeSpec, runner: Runner, program: JSONObject, guard: ConfigValidator
) -> HandlerType:
    return HandlerType(
        name=spec.name,
        runner=ContainerPluginRunner(runner, program),
        version=manifest.version,
        config_schema=dict(spec.config_schema),
        description=spec.description or manifest.description,
        validate=guard,
    )


__all__ = ["ContainerPluginRunner", "container_handler_types"]
