"""The author's tools: ``plugins init``, ``build``, ``sign`` and ``test`` (``keygen`` and
``publish`` are :func:`neoactions.plugins.signing.keygen` and
:func:`neoactions.plugins.registry.publish`).

A plugin directory holds ``neoactions-plugin.yaml``, the handler's source and ``tests/*.json``
cases (``{"config": ..., "input": ..., "output": ...}``). ``build`` writes the artifact and its
sha256 into the manifest (dropping a signature the new artifact would void); ``sign`` adds
the signature; ``test`` runs the manifest's examples and the cases through the real runner.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.plugins import wasmjs
from neoactions.plugins.manifest import MANIFEST_FILE, parse_manifest, read_manifest
from neoactions.plugins.registry import sha256
from neoactions.plugins.signing import load_private, sign

JS_SOURCE = "handler.js"
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

_HANDLER_JS = """\
// The {name} handler: returns its input unchanged.
// input = {{config, data, context}}; return any JSON value. console.log lines become logs.
function main(input) {{
  return input.data;
}}
"""

_README = """\
# {name}

A neoactions wasm plugin. Edit `handler.js`, then:

    neoactions plugins build .
    neoactions plugins test .
    neoactions plugins sign . --key ../keys/plugin-signing.key
    neoactions plugins publish . --registry ../registry
"""


def _write_manifest(directory: Path, document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    (directory / MANIFEST_FILE).write_text(text, "utf-8")


def _raw_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        doc = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise InvalidArgument.field("dir", f"no plugin here: cannot read {path} ({exc.strerror})") from None
    if not isinstance(doc, dict):
        raise InvalidArgument.field("manifest", f"{path} is not a mapping")
    return doc


def init(name: str, kind: str = "wasm", parent: Path = Path()) -> Path:
    """Create ``parent/name/``: a manifest, a handler that returns its input, a test case."""
    if not _PLUGIN_NAME.match(name):
        raise InvalidArgument.field(
            "name", "a plugin name is a lowercase letter, then lowercase letters, digits, - or _"
        )
    if kind not in ("wasm", "container", "python"):
        raise InvalidArgument.field("kind", "wasm, container or python")
    if kind == "container":
        raise FailedPrecondition(
            "no container skeleton: write a Dockerfile (nothing is pulled: FROM scratch with a static binary,"
            " or an image you imported) and a manifest with kind: container; then build, sign, publish",
            reason="PLUGIN_KIND_UNSUPPORTED",
        )
    directory = parent / name
    if directory.exists():
        raise FailedPrecondition(f"{directory} exists; choose another name or directory")
    type_name = name.replace("-", "_")
    if kind == "python":
        return _init_python(directory, name, type_name)
    document: dict[str, Any] = {
        "name": name,
        "version": "0.1.0",
        "description": f"{name}: returns its input unchanged (a new plugin)",
        "license": "Apache-2.0",
        "neoactions": ">=0.1",
        "handler_types": [
            {
                "name": type_name,
                "kind": "wasm",
                "description": "Returns the input it is given",
                "config_schema": {"type": "object", "properties": {}, "additionalProperties": True},
                "examples": [
                    {"description": "the round trip", "input": {"hello": "world"}, "output": {"hello": "world"}}
                ],
            }
        ],
        "artifact": {"file": f"{name}.wasm", "sha256": "0" * 64, "kind": "wasm-module"},
        "capabilities": {"memory_mb": 64, "timeout_seconds": 5},
    }
    (directory / "tests").mkdir(parents=True)
    _write_manifest(directory, document)
    (directory / JS_SOURCE).write_text(_HANDLER_JS.format(name=type_name), "utf-8")
    (directory / "README.md").write_text(_README.format(name=name), "utf-8")
    case = {"config": {}, "input": {"n": 1, "text": "round trip"}, "output": {"n": 1, "text": "round trip"}}
    (directory / "tests" / "echo.json").write_text(json.dumps(case, indent=2) + "\n", "utf-8")
    return directory


_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "0.1.0"
description = "{name}: a neoactions plugin"
requires-python = ">=3.11"
# your handler's own dependencies go here: they are installed into the plugin's own
# virtual environment, never into the server's
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["{package}"]
"""

_HANDLER_PY = """\
\"\"\"The {type_name} handler: returns its input unchanged (served by the neoactions SDK).\"\"\"

from neoactions.plugins.sdk import handler


@handler(name="{type_name}", version="0.1.0")
def {package}(config, data, ctx):
    ctx.log(f"{type_name} got {{data!r}}")
    return data
"""


def _init_python(directory: Path, name: str, type_name: str) -> Path:
    package = type_name
    document: dict[str, Any] = {
        "name": name,
        "version": "0.1.0",
        "description": f"{name}: returns its input unchanged (a new plugin)",
        "license": "Apache-2.0",
        "neoactions": ">=0.1",
        "handler_types": [
            {
                "name": type_name,
                "kind": "python-sidecar",
                "entrypoint": f"{package}:{package}",
                "description": "Returns the input it is given",
                "config_schema": {"type": "object", "properties": {}, "additionalProperties": True},
                "examples": [
                    {"description": "the round trip", "input": {"hello": "world"}, "output": {"hello": "world"}}
                ],
            }
        ],
        "artifact": {"file": f"{package}-0.1.0-py3-none-any.whl", "sha256": "0" * 64, "kind": "python-wheel"},
        "capabilities": {"memory_mb": 128, "timeout_seconds": 10},
    }
    (directory / package).mkdir(parents=True)
    (directory / "tests").mkdir()
    _write_manifest(directory, document)
    (directory / "pyproject.toml").write_text(_PYPROJECT.format(name=package, package=package), "utf-8")
    (directory / package / "__init__.py").write_text(_HANDLER_PY.format(type_name=type_name, package=package), "utf-8")
    case = {"config": {}, "input": {"n": 1, "text": "round trip"}, "output": {"n": 1, "text": "round trip"}}
    (directory / "tests" / "echo.json").write_text(json.dumps(case, indent=2) + "\n", "utf-8")
    return directory


def build(directory: Path) -> Path:
    """Build the artifact and record its sha256 and size in the manifest; a signature over the
    old artifact is dropped. wasm: the runner's QuickJS with ``handler.js`` inside; container:
    ``docker build`` of the directory's ``Dockerfile``, then ``docker save`` of that image."""
    document = _raw_manifest(directory)
    kinds = {t.get("kind") for t in document.get("handler_types") or [] if isinstance(t, dict)}
    if kinds == {"wasm"}:
        data, kind, suffix = _wasm_module(directory), "wasm-module", "wasm"
    elif kinds == {"container"}:
        data, kind, suffix = _image_archive(directory, document), "container-image", "tar"
    elif kinds == {"python-sidecar"}:
        wheel_name, data = _wheel(directory)
        document.setdefault("artifact", {})["file"] = wheel_name
        kind, suffix = "python-wheel", "whl"
    else:
        raise FailedPrecondition(
            f"this version builds wasm and container plugins (the manifest says {', '.join(sorted(map(str, kinds)))})",
            reason="PLUGIN_KIND_UNSUPPORTED",
        )
    artifact = dict(document.get("artifact") or {})
    artifact.setdefault("file", f"{document.get('name', 'plugin')}.{suffix}")
    artifact.update(sha256=sha256(data), kind=kind, size=len(data))
    document["artifact"] = artifact
    document.pop("signature", None)
    parse_manifest(document)  # refuse to write a manifest that would not install
    out = directory / str(artifact["file"])
    out.write_bytes(data)
    _write_manifest(directory, document)
    return out


def _wasm_module(directory: Path) -> bytes:
    source_path = directory / JS_SOURCE
    try:
        source = source_path.read_text("utf-8")
    except OSError as exc:
        raise FailedPrecondition(f"cannot read the handler source {source_path} ({exc.strerror})") from None
    return wasmjs.embed(wasmjs.quickjs_runtime(), source)


def _wheel(directory: Path) -> tuple[str, bytes]:
    """``pip wheel`` of the plugin's ``pyproject.toml`` (its build backend must be installed here)."""
    import subprocess
    import sys

    if not (directory / "pyproject.toml").is_file():
        raise FailedPrecondition(f"{directory / 'pyproject.toml'} is missing: a python plugin is a wheel built from it")
    with tempfile.TemporaryDirectory(prefix="neoactions-wheel-") as out:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-input",
             "--disable-pip-version-check", "-w", out, str(directory.resolve())],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        wheels = sorted(Path(out).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise FailedPrecondition(
                f"building the wheel of {directory} failed: {done.stderr.strip()[-1000:]}", reason="WHEEL_BUILD_FAILED"
            )
        return wheels[0].name, wheels[0].read_bytes()


def _image_archive(directory: Path, document: dict[str, Any]) -> bytes:
    """``docker build`` the plugin's Dockerfile as ``neoactions-plugin/NAME:VERSION`` and
    ``docker save`` it (nothing is pulled: the base must be local, e.g. ``FROM scratch``)."""
    import docker

    if not (directory / "Dockerfile").is_file():
        raise FailedPrecondition(f"{directory / 'Dockerfile'} is missing: a container plugin is built from it")
    tag = f"neoactions-plugin/{document.get('name', 'plugin')}:{document.get('version', '0.0.0')}"
    try:
        client = docker.from_env()
        try:
            client.images.build(path=str(directory), tag=tag, rm=True, pull=False)
            return b"".join(client.images.get(tag).save(named=True))
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        raise FailedPrecondition(f"docker could not build {tag}: {exc}", reason="DOCKER_BUILD_FAILED") from None


def sign_plugin(directory: Path, key_file: Path) -> str:
    """Sign the manifest (after checking the built artifact matches it); returns the key id."""
    manifest = read_manifest(directory)
    artifact = directory / manifest.artifact_file
    if not artifact.is_file() or sha256(artifact.read_bytes()) != manifest.artifact_sha256:
        raise FailedPrecondition(f"{artifact} is missing or does not match the manifest: build first")
    signed = sign(manifest.document, load_private(key_file))
    _write_manifest(directory, signed)
    return str(signed["signature"]["key_id"])


@dataclass(frozen=True, slots=True)
class CaseResult:
    handler_type: str
    case: str
    passed: bool
    output: Any
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "handler_type": self.handler_type,
            "case": self.case,
            "passed": self.passed,
            "output": self.output,
            "message": self.message,
        }


def _cases(
    directory: Path, type_names: Sequence[str], examples: Mapping[str, Sequence[dict[str, Any]]]
) -> list[tuple[str, str, dict[str, Any]]]:
    cases = [(t, f"example {i + 1}", dict(e)) for t in type_names for i, e in enumerate(examples.get(t, ()))]
    for path in sorted((directory / "tests").glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        cases.append((str(doc.get("handler_type") or type_names[0]), path.name, doc))
    return cases


async def run_tests(directory: Path) -> list[CaseResult]:
    """Run every example and test case through the real wasm runner, as the server would."""
    from datetime import timedelta

    from neoactions.domain.model import utcnow
    from neoactions.sandboxes.container import register as register_container
    from neoactions.sandboxes.wasm import register as register_wasm
    from neoactions.server.pluginhost.container import container_handler_types
    from neoactions.server.pluginhost.python import python_handler_types
    from neoactions.server.pluginhost.wasm import wasm_handler_types
    from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Result

    manifest = read_manifest(directory)
    artifact_path = directory / manifest.artifact_file
    if not artifact_path.is_file():
        raise FailedPrecondition(f"{artifact_path} is missing: run `neoactions plugins build {directory}` first")
    artifact = artifact_path.read_bytes()
    if sha256(artifact) != manifest.artifact_sha256:
        raise FailedPrecondition(f"{artifact_path} does not match the manifest's sha256: build again")
    examples = {t.name: t.examples for t in manifest.handler_types}
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="neoactions-plugin-test-") as data_dir:
        registry = HandlerRegistry({"data_dir": data_dir, "wasm_warm": ()})
        grants = manifest.capabilities.grants_needed()  # a local test grants what the plugin asks
        try:
            if manifest.kind == "container":
                register_container(registry)
                built = await container_handler_types(manifest, artifact, registry, grants)
            elif manifest.kind == "python-sidecar":
                built = await python_handler_types(manifest, artifact, registry, grants)
                for sidecar in built:
                    await registry.install(sidecar)  # starts its sidecar process
            else:
                register_wasm(registry)
                built = await wasm_handler_types(manifest, artifact, registry, grants)
            types = {t.name: t for t in built}
            for type_name, label, case in _cases(directory, manifest.type_names(), examples):
                handler_type = types.get(type_name)
                if handler_type is None:
                    results.append(CaseResult(type_name, label, False, None, "no such handler type in the manifest"))
                    continue
                config = dict(case.get("config") or {})
                try:
                    handler_type.check_config(config)
                except InvalidArgument as exc:
                    results.append(CaseResult(type_name, label, False, None, exc.message))
                    continue
                ctx = ExecutionContext(
                    tenant="test",
                    execution_id=f"test-{len(results) + 1}",
                    action_name=f"plugin-test-{type_name}",
                    action_version=1,
                    attempt=1,
                    idempotency_key=f"test-{len(results) + 1}",
                    deadline=utcnow() + timedelta(seconds=30),
                )
                outcome: Any = None
                async for update in handler_type.runner.execute(config, case.get("input"), ctx):
                    if isinstance(update, Result | Failure):
                        outcome = update
                if isinstance(outcome, Result):
                    expected = case.get("output", outcome.output)
                    ok = outcome.output == expected
                    why = "" if ok else f"expected {json.dumps(expected)}"
                    results.append(CaseResult(type_name, label, ok, outcome.output, why))
                else:
                    why = outcome.error.message if isinstance(outcome, Failure) else "no result"
                    results.append(CaseResult(type_name, label, False, None, why))
        finally:
            await registry.aclose()
    return results


__all__ = ["JS_SOURCE", "CaseResult", "build", "init", "run_tests", "sign_plugin"]
