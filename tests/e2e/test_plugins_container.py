"""Container plugins through a real server and real Docker, on both stores: a ``docker save``
archive published to a registry, verified and installed, ``docker load``-ed by the container
runner; the container has no network unless the egress its manifest requests is granted."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import tests.integration.dockerenv  # noqa: F401 - labels every container of this test session
from neoactions.client import AsyncClient
from neoactions.domain.errors import FailedPrecondition
from neoactions.domain.model import ExecutionStatus
from neoactions.plugins import authoring, registry, signing
from neoactions.plugins.manifest import MANIFEST_FILE
from neoactions.server.pluginhost.cleanup import archive_image
from tests.conftest import ROOT, require_service
from tests.e2e.conftest import ServerProcess, module_server
from tests.integration.dockerenv import docker_images as docker_images  # the fixture: the test images

HANDLER_C = ROOT / "tests" / "integration" / "images" / "oneshot" / "handler.c"
DOCKERFILE = 'FROM scratch\nCOPY handler /handler\nUSER 65534:65534\nENTRYPOINT ["/handler"]\n'


def _docker_ready() -> bool:
    if shutil.which("docker") is None or shutil.which("gcc") is None:
        return False
    up = subprocess.run(["bash", str(ROOT / "scripts" / "docker-up.sh")], capture_output=True, timeout=600)
    return up.returncode == 0


def _gateway() -> str:
    out = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ipam = json.loads(out)[0]
    return str(ipam.get("Gateway") or next(ipaddress.ip_network(ipam["Subnet"]).hosts()))


def _container_plugin(work: Path, name: str, binary: Path, network: list[str]) -> Path:
    directory = work / name
    directory.mkdir()
    shutil.copy(binary, directory / "handler")
    (directory / "Dockerfile").write_text(DOCKERFILE)
    manifest = {
        "name": name,
        "version": "1.0.0",
        "description": "the test one-shot handler (echo, probe, net) as a plugin",
        "handler_types": [{"name": name.replace("-", "."), "kind": "container", "mode": "oneshot"}],
        "artifact": {"file": f"{name}.tar", "sha256": "0" * 64},
        "capabilities": {"memory_mb": 64, **({"network": network} if network else {})},
    }
    (directory / MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    authoring.build(directory)
    return directory


def _example_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_registry_build", ROOT / "plugins/registry/build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def container_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The example registry's container plugin, and two probes built from the test handler."""
    require_service("Docker", _docker_ready(), "docker-up.sh failed or gcc is missing")
    base = tmp_path_factory.mktemp("container-plugins")
    binary = base / "handler"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(HANDLER_C)], check=True, capture_output=True)
    _, public = _example_builder().build(base / "registry", kinds=("container",))
    private = base / "registry" / "keys" / signing.PRIVATE_FILE
    gateway = _gateway()
    for name, network in (("probe-sealed", []), ("probe-egress", [gateway])):
        plugin = _container_plugin(base, name, binary, network)
        authoring.sign_plugin(plugin, private)
        registry.publish(plugin, base / "registry")
    return base / "registry", public, gateway


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def container_server(
    request: pytest.FixtureRequest,
    container_registry: tuple[Path, Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    folder, public, _ = container_registry
    env = {"NEOACTIONS_PLUGIN_REGISTRIES": str(folder), "NEOACTIONS_TRUSTED_PLUGIN_KEYS": str(public)}
    with module_server(request.param, tmp_path_factory.mktemp(f"cplugins-{request.param}"), env) as server:
        yield server


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.create_server(("0.0.0.0", 0))
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


async def test_container_plugins_run_sealed_unless_egress_is_granted(
    container_server: ServerProcess, container_registry: tuple[Path, Path, str], listener: int
) -> None:
    _, _, gateway = container_registry
    probe = {"mode": "net", "host": gateway, "port": listener}
    async with AsyncClient(container_server.target, timeout=120) as admin:
        for plugin in await admin.list_plugins(installed_only=True):
            await admin.uninstall_plugin(plugin["name"], force=True)
        sealed = await admin.install_plugin("probe-sealed")
        assert sealed["kind"] == "container" and sealed["signed_by"]
        ran = await admin.run({"type": "probe.sealed", "config": {}}, {"mode": "probe"})
        assert ran.status is ExecutionStatus.SUCCEEDED, ran
        assert ran.output["uid"] == 65534 and ran.output["root_writable"] is False  # hardened as any container
        ran = await admin.run({"type": "probe.sealed", "config": {}}, probe)
        assert ran.status is ExecutionStatus.SUCCEEDED and ran.output["connected"] is False, ran.output

        with pytest.raises(FailedPrecondition) as refused:
            await admin.install_plugin("probe-egress")
        assert refused.value.reason == "PLUGIN_CAPABILITY_NOT_GRANTED" and f"net:{gateway}" in refused.value.message
        assert [p["name"] for p in await admin.list_plugins(installed_only=True)] == ["probe-sealed"]

        egress = await admin.install_plugin("probe-egress", grants=[f"net:{gateway}"])
        assert egress["granted_capabilities"] == [f"net:{gateway}"]
        ran = await admin.run({"type": "probe.egress", "config": {}}, probe)
        assert ran.status is ExecutionStatus.SUCCEEDED and ran.output == {"connected": True}, ran.output
        for name in ("probe-sealed", "probe-egress"):
            await admin.uninstall_plugin(name)


def _image_present(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False).returncode == 0


async def test_the_example_container_plugin_runs_from_an_action(
    container_server: ServerProcess, container_registry: tuple[Path, Path, str]
) -> None:
    (archive,) = (container_registry[0] / "text-stats" / "1.0.0").glob("*.tar")
    image_id, _ = archive_image(archive)
    async with AsyncClient(container_server.target, timeout=120) as admin:
        found = {p["name"]: p for p in await admin.search_plugins("stats")}
        assert found["text-stats"]["kind"] == "container"
        await admin.install_plugin("text-stats", "^1")
        action = {
            "name": "article-stats",
            "trigger": {"event_types": ["articles.published"]},
            "handler": {"type": "text.stats", "version": "^1", "config": {"words_per_minute": 120}},
            "execution_mode": "sync",
        }
        await admin.create_action(action)
        published = await admin.publish("articles.published", {"text": "Hello world,\nthis is neoactions."}, wait=True)
        stored = await admin.get_execution(published.executions[0].id)
        assert stored.status is ExecutionStatus.SUCCEEDED, stored
        assert stored.output == {"characters": 32, "words": 5, "lines": 2, "reading_seconds": 3}
        assert stored.handler_version == "1.0.0"
        assert _image_present(image_id)  # loaded by the run
        removed = await admin.uninstall_plugin("text-stats", force=True)
        assert removed["disabled_actions"] == ["admin/article-stats"]
        assert not _image_present(image_id)  # uninstall removed the image it loaded
        await admin.delete_action("article-stats")


# -- sidecar mode ---------------------------------------------------------------------------
#
# The plugin's image is the python-sidecar test image (built locally by
# scripts/build-test-images.sh, nothing pulled): a warm container serving the Handler
# protocol through the Python SDK. Its archive is large (a Debian root with python), so this
# runs on the embedded store only.


@pytest.fixture(scope="module")
def sidecar_registry(tmp_path_factory: pytest.TempPathFactory, docker_images: dict[str, str]) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sidecar-plugin")
    private, public = signing.keygen(base / "keys")
    directory = base / "sidecar-echo"
    directory.mkdir()
    (directory / "Dockerfile").write_text(f"FROM {docker_images['python_sidecar']}\n")
    manifest = {
        "name": "sidecar-echo",
        "version": "1.0.0",
        "description": "the python-sidecar test handler as a container plugin in sidecar mode",
        "handler_types": [{"name": "sidecar.echo", "kind": "container", "mode": "sidecar"}],
        "artifact": {"file": "sidecar-echo.tar", "sha256": "0" * 64},
        "capabilities": {"memory_mb": 256},
    }
    (directory / MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    authoring.build(directory)
    authoring.sign_plugin(directory, private)
    registry.publish(directory, base / "registry")
    return base / "registry", public


async def test_a_container_plugin_in_sidecar_mode_runs_warm(
    sidecar_registry: tuple[Path, Path], docker_images: dict[str, str], tmp_path: Path
) -> None:
    folder, public = sidecar_registry
    env = {"NEOACTIONS_PLUGIN_REGISTRIES": str(folder), "NEOACTIONS_TRUSTED_PLUGIN_KEYS": str(public)}
    with module_server("sqlite", tmp_path, env) as server:
        async with AsyncClient(server.target, timeout=180) as admin:
            installed = await admin.install_plugin("sidecar-echo")
            assert installed["kind"] == "container" and installed["signed_by"]
            handler = {"type": "sidecar.echo", "config": {"greeting": "hej"}}
            first = await admin.run(handler, {"n": 1})
            assert first.status is ExecutionStatus.SUCCEEDED, first
            assert first.output["echo"] == {"n": 1} and first.output["greeting"] == "hej", first.output
            second = await admin.run(handler, {"n": 2})
            assert second.status is ExecutionStatus.SUCCEEDED, second
            # warm: the second execution is served by the same container
            assert second.output["host"] == first.output["host"], (first.output, second.output)
            failed = await admin.run(handler, {"mode": "fail"})
            assert failed.status is ExecutionStatus.FAILED and failed.error is not None
            assert "asked to fail" in failed.error.message
            await admin.uninstall_plugin("sidecar-echo")
    # the plugin's image was the test image under another tag: uninstall removed its own tag only
    assert _image_present(docker_images["python_sidecar"])
    assert not _image_present("neoactions-plugin/sidecar-echo:1.0.0")
