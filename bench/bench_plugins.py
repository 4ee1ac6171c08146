"""Plugin overhead: a wasm plugin's handler type against the same JavaScript configured
directly on the ``wasm`` handler type, same runner, same process, same run; a python-wheel
plugin (its own virtual environment, a warm SDK sidecar) against the same SDK handler served
the same way and called through the ``sidecar`` handler type; and what an install costs
(registry read, digest, signature, store, registration) on the in-memory store.

Runs alternate between the two so both see the same machine state. A plugin adds a dict
merge per execution (the plugin's program into the action's config); the guest, its
source and its limits are the same.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from neoactions.domain.model import JSONObject, utcnow
from neoactions.plugins import authoring, registry, signing
from neoactions.plugins.manifest import read_manifest
from neoactions.sandboxes.wasm import register as register_wasm
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.pluginhost.host import PluginHost
from neoactions.server.pluginhost.wasm import wasm_handler_types
from neoactions.server.runners import ExecutionContext, HandlerRegistry, Result, Runner

RUNS = 300
SOURCE = "function main(input) { return { total: input.data.items.reduce((s, i) => s + i.qty * i.price, 0) }; }\n"
DATA = {"items": [{"qty": q, "price": 2.5} for q in range(10)]}


def _ctx() -> ExecutionContext:
    return ExecutionContext(
        tenant="bench",
        execution_id="x",
        action_name="bench",
        action_version=1,
        attempt=1,
        idempotency_key="k",
        deadline=utcnow() + timedelta(hours=1),
    )


async def _once(runner: Runner, config: JSONObject, expected: object = None) -> float:
    start = time.perf_counter()
    outcome = None
    async for update in runner.execute(config, DATA, _ctx()):
        outcome = update
    elapsed = time.perf_counter() - start
    want = {"total": 112.5} if expected is None else expected
    assert isinstance(outcome, Result) and outcome.output == want, outcome
    return elapsed


def _plugin(work: Path) -> Path:
    directory = authoring.init("bench-total", "wasm", work)
    (directory / authoring.JS_SOURCE).write_text(SOURCE)
    (directory / "tests" / "echo.json").unlink()
    authoring.build(directory)
    return directory


async def _sidecar(work: Path) -> tuple[list[float], list[float]]:
    """The python plugin's type vs the ``sidecar`` type at the same (already serving) address."""
    from neoactions.sandboxes.sidecar import SidecarRunner
    from neoactions.sandboxes.sidecar.address import SidecarPolicy
    from neoactions.server.pluginhost.python import python_handler_types

    directory = authoring.init("bench-echo", "python", work)
    (directory / "tests" / "echo.json").unlink()
    authoring.build(directory)
    manifest = read_manifest(directory)
    artifact = (directory / manifest.artifact_file).read_bytes()
    registry_ = HandlerRegistry({"data_dir": str(work / "sidecar-data")})
    (plugin_type,) = await python_handler_types(manifest, artifact, registry_)
    await registry_.install(plugin_type)  # starts the warm process
    try:
        address = plugin_type.runner.address  # type: ignore[attr-defined]
        direct = SidecarRunner(policy=SidecarPolicy.from_settings({"sidecar_endpoints": [address]}))
        config: JSONObject = {"address": address, "config": {}, "check_health": False, "validate_config": False}
        expected = DATA
        plugin_times, direct_times = [], []
        for i in range(20 + RUNS):
            a = await _once(plugin_type.runner, {}, expected)
            b = await _once(direct, config, expected)
            if i >= 20:
                plugin_times.append(a)
                direct_times.append(b)
        await direct.aclose()
    finally:
        await registry_.aclose()
    return plugin_times, direct_times


async def _run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        directory = _plugin(work)
        registry_ = HandlerRegistry({"data_dir": str(work / "data"), "wasm_warm": ()})
        register_wasm(registry_)
        try:
            manifest = read_manifest(directory)
            artifact = (directory / manifest.artifact_file).read_bytes()
            (plugin_type,) = await wasm_handler_types(manifest, artifact, registry_)
            direct = registry_.get("wasm").runner
            direct_config: JSONObject = {"language": "javascript", "source": SOURCE}
            for _ in range(20):  # compile and warm both paths
                await _once(plugin_type.runner, {})
                await _once(direct, direct_config)
            plugin_times, direct_times = [], []
            for _ in range(RUNS):
                plugin_times.append(await _once(plugin_type.runner, {}))
                direct_times.append(await _once(direct, direct_config))

            # installs: the whole path an operator's install takes, minus gRPC
            private, public = signing.keygen(work / "keys")
            authoring.sign_plugin(directory, private)
            registry.publish(directory, work / "registry")
            installs = []
            for _ in range(10):
                store = MemoryStore()
                await store.open()
                host = PluginHost(store, registry_, registries=[str(work / "registry")], trusted_keys=[str(public)])
                start = time.perf_counter()
                await host.install("bench-total")
                installs.append(time.perf_counter() - start)
                await host.uninstall("bench-total")
        finally:
            await registry_.aclose()
        sidecar_plugin, sidecar_direct = await _sidecar(work)

    def ms(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q < 100 else max(values) * 1000

    p50p, p50d = statistics.median(plugin_times) * 1000, statistics.median(direct_times) * 1000
    rows = [
        "| path | p50 ms | p95 ms | runs/s (sequential) |",
        "|---|---|---|---|",
        f"| wasm configured directly (baseline) | {p50d:.2f} | {ms(direct_times, 95):.2f} "
        f"| {RUNS / sum(direct_times):.0f} |",
        f"| wasm plugin handler type | {p50p:.2f} | {ms(plugin_times, 95):.2f} | {RUNS / sum(plugin_times):.0f} |",
    ]
    rows += [
        f"| sidecar type at the SDK server's address (baseline) | {statistics.median(sidecar_direct) * 1000:.2f} "
        f"| {ms(sidecar_direct, 95):.2f} | {RUNS / sum(sidecar_direct):.0f} |",
        f"| python-wheel plugin handler type | {statistics.median(sidecar_plugin) * 1000:.2f} "
        f"| {ms(sidecar_plugin, 95):.2f} | {RUNS / sum(sidecar_plugin):.0f} |",
    ]
    ratio = statistics.median(plugin_times) / statistics.median(direct_times)
    sidecar_ratio = statistics.median(sidecar_plugin) / statistics.median(sidecar_direct)
    return (
        "\n".join(rows) + f"\n\nwasm plugin / direct p50: **{ratio:.2f}x**; python-wheel plugin / sidecar p50:"
        f" **{sidecar_ratio:.2f}x**; over {RUNS} alternating runs each."
        + f"\nInstall (registry folder read, sha256, ed25519, in-memory store, registration) p50: "
        f"{statistics.median(installs) * 1000:.1f} ms over {len(installs)} installs.\n"
    )


def main() -> str:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(main())
