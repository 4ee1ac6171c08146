"""Handler types of ``python-sidecar`` plugins: a wheel in its own virtual environment, served
out of process as a warm sidecar speaking the Handler protocol (the Python SDK's ``serve``).

Each process makes the environment once per artifact, in
``<data_dir>/plugins/venvs/<sha256>/``: a virtual environment of the server's interpreter
into which pip installs the wheel and its dependencies, so they never touch the server's
packages. The server's own packages (gRPC, the SDK) come after the plugin's on its path
(a ``.pth`` file), so a plugin may pin other versions of them. Each handler type is one
process, started when the type is opened (install, or the server's start) and stopped when
it is closed (update's old version uninstalled, uninstall, the server's stop); it listens
on a unix socket, and executions go through the ``sidecar`` runner's client with the
deadline propagated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import site
import subprocess
import sys
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
    Failure,
    HandlerRegistry,
    HandlerType,
    RunnerUpdate,
)

log = logging.getLogger(__name__)

#: how long a sidecar may take to answer its first health check
START_SECONDS = 30.0

_LAUNCH = (
    "import importlib, sys\n"
    "from neoactions.plugins.sdk import serve\n"
    "module, _, attr = sys.argv[1].partition(':')\n"
    "serve(getattr(importlib.import_module(module), attr))\n"
)


def _server_site_packages() -> list[str]:
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


def make_venv(folder: Path, wheel_name: str, artifact: bytes) -> Path:
    """The plugin's virtual environment with its wheel installed (made once; reused after)."""
    python = folder / "bin" / "python"
    done = folder / ".installed"
    if done.is_file():
        return python
    if folder.exists():
        shutil.rmtree(folder)  # a half-made one (a crash while installing)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        # no pip of its own (seconds faster): the server's pip, found through the .pth below, runs
        # under the plugin's interpreter and so installs into the plugin's environment
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(work)], check=True, capture_output=True, timeout=300
        )
        # the server's packages (grpc, the SDK) last on the plugin's path: its own come first
        purelib = subprocess.run(
            [str(work / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # ``addsitedir``: the server's own .pth files (an editable install) count too
        lines = [f"import site; site.addsitedir({p!r})" for p in _server_site_packages()]
        Path(purelib, "neoactions-server.pth").write_text("\n".join(lines) + "\n")
        wheel = work / wheel_name
        wheel.write_bytes(artifact)
        pip = subprocess.run(
            [
                str(work / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--no-input",
                "--disable-pip-version-check",
                str(wheel),
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if pip.returncode != 0:
            raise FailedPrecondition(
                f"installing {wheel_name} into its virtual environment failed: {pip.stderr.strip()[-1000:]}",
                reason="PLUGIN_WHEEL_INSTALL_FAILED",
            )
        wheel.unlink()
        (work / ".installed").write_text(wheel_name + "\n")
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return python


class SidecarProcess:
    """One handler type's warm process, and the runner that calls it."""

    def __init__(
        self, python: Path, entrypoint: str, socket_path: Path, settings: dict[str, object], log_path: Path
    ) -> None:
        from neoactions.sandboxes.sidecar import SidecarRunner
        from neoactions.sandboxes.sidecar.address import SidecarPolicy

        self.python = python
        self.entrypoint = entrypoint
        self.socket_path = socket_path
        self.address = f"unix:{socket_path}"
        self.log_path = log_path
        self.runner = SidecarRunner(
            policy=SidecarPolicy.from_settings({**settings, "sidecar_endpoints": [self.address]})
        )
        self._proc: asyncio.subprocess.Process | None = None

    async def open(self) -> None:
        from neoactions.sandboxes.sidecar import wait_serving

        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEOACTIONS_")}
        env.pop("PYTHONPATH", None)
        env["NEOACTIONS_HANDLER_ADDRESS"] = self.address
        with self.log_path.open("ab") as log_file:  # the sidecar's own output, for the operator
            self._proc = await asyncio.create_subprocess_exec(
                str(self.python),
                "-c",
                _LAUNCH,
                self.entrypoint,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        client = await self.runner.connect(self.address)
        serving = asyncio.ensure_future(wait_serving(client, START_SECONDS))
        exited = asyncio.ensure_future(self._proc.wait())
        try:
            await asyncio.wait({serving, exited}, return_when=asyncio.FIRST_COMPLETED)
            died = exited.done()
            # decided before the loser is cancelled: a task being cancelled is neither done
            # nor cancelled yet, and asking it for its exception would raise
            ok = serving.done() and not serving.cancelled() and serving.exception() is None
        finally:
            client.active -= 1
            exited.cancel()
            if not serving.done():
                serving.cancel()
        if ok:
            return
        await self.close()
        tail = self.log_path.read_text(errors="replace")[-800:].strip() if self.log_path.exists() else ""
        raise FailedPrecondition(
            f"the plugin sidecar {self.entrypoint} did not start serving"
            f" ({'it exited' if died else f'within {START_SECONDS:g}s'}): {tail or 'no output'}"
            f" (log: {self.log_path})",
            reason="PLUGIN_SIDECAR_DID_NOT_START",
        )

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        if self._proc is None or self._proc.returncode is not None:
            yield Failure.of(
                "handler_unavailable", f"the plugin sidecar {self.entrypoint} is not running", retryable=True
            )
            return
        request: JSONObject = {
            "address": self.address,
            "config": config,
            "check_health": False,
            "validate_config": False,
        }
        async for update in self.runner.execute(request, data, ctx):
            yield update

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.runner.aclose()
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(OSError):
            self.socket_path.unlink()


async def python_handler_types(
    manifest: Manifest, artifact: bytes, registry: HandlerRegistry, grants: Sequence[str] = ()
) -> list[HandlerType]:
    """The handler types of a verified wheel plugin, not yet registered (their processes start
    when the registry opens them)."""
    data_dir = Path(str(registry.settings.get("data_dir") or Path(tempfile.gettempdir()) / "neoactions"))
    folder = data_dir / "plugins" / "venvs" / manifest.artifact_sha256
    python = await asyncio.to_thread(make_venv, folder, manifest.artifact_file, artifact)
    guard = secrets_guard(manifest.name, [g.removeprefix("secret:") for g in grants if g.startswith("secret:")])
    types = []
    for spec in manifest.handler_types:
        if not spec.entrypoint:
            raise FailedPrecondition(f"python-sidecar handler type {spec.name} names no entrypoint (module:handler)")
        # unix socket paths are short (108 bytes): a hash of the process's own place
        place = f"{os.getpid()}:{data_dir}:{manifest.artifact_sha256}:{spec.name}"
        socket_path = (
            Path(tempfile.gettempdir())
            / "neoactions-plugins"
            / f"{hashlib.sha256(place.encode()).hexdigest()[:20]}.sock"
        )
        log_path = data_dir / "plugins" / "logs" / f"{manifest.name}-{manifest.version}-{spec.name}.log"
        process = SidecarProcess(python, spec.entrypoint, socket_path, dict(registry.settings), log_path)
        types.append(_handler_type(manifest, spec, process, guard))
    return types


def _handler_type(
    manifest: Manifest, spec: HandlerTypeSpec, process: SidecarProcess, guard: ConfigValidator
) -> HandlerType:
    return HandlerType(
        name=spec.name,
        runner=process,
        version=manifest.version,
        config_schema=dict(spec.config_schema),
        description=spec.description or manifest.description,
        validate=guard,
        open=process.open,
        close=process.close,
    )


__all__ = ["SidecarProcess", "make_venv", "python_handler_types"]
