"""The ``container`` handler type against the real Docker engine.

Images come from scripts/build-test-images.sh: a FROM-scratch static C handler
for one-shot mode (its behaviour picked by ``input.mode``) and a debootstrapped
Python image serving the Handler protocol with the Python SDK for sidecar mode.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.sandboxes.container import CONFIG_SCHEMA, INSTANCE_LABEL, ContainerRunner
from neoactions.sandboxes.container import register as register_container
from neoactions.sandboxes.container.engine import LABELS_ENV, OWNER_LABEL
from neoactions.server.runners import Failure, HandlerRegistry, Log, Progress, Result
from tests.integration.dockerenv import (
    ONESHOT_IMAGE,
    PYTHON_SIDECAR_IMAGE,
    collect,
    context,
)
from tests.integration.dockerenv import docker_images as docker_images  # the fixture

pytestmark = pytest.mark.usefixtures("docker_images")

ONESHOT = {"image": ONESHOT_IMAGE}
SIDECAR = {"image": PYTHON_SIDECAR_IMAGE, "mode": "sidecar", "config": {"greeting": "hej"}}


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def docker_ok(*args: str) -> bool:
    return subprocess.run(["docker", *args], capture_output=True, check=False).returncode == 0


def finished_process_pid() -> int:
    """The pid of a process that has exited (nothing runs under it now)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def containers_of(runner: ContainerRunner) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label={INSTANCE_LABEL}={runner.engine.instance}").split()


async def wait_for(predicate: Any, within: float = 15.0, what: str = "condition") -> Any:
    end = time.monotonic() + within
    while time.monotonic() < end:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached within {within}s")


@pytest.fixture
async def runner() -> AsyncIterator[ContainerRunner]:
    r = ContainerRunner({"container_health_interval": 3600})
    try:
        yield r
    finally:
        await r.aclose()
        # whatever happened in the test, nothing of this runner may survive its close
        assert containers_of(r) == []


def outcome(updates: list[Any]) -> Result | Failure:
    last = updates[-1]
    assert isinstance(last, Result | Failure), updates
    assert not any(isinstance(u, Result | Failure) for u in updates[:-1]), "exactly one outcome, last"
    return last


# -- one-shot -----------------------------------------------------------------------


async def test_oneshot_reads_stdin_json_and_returns_stdout_json(runner: ContainerRunner) -> None:
    ctx = context()
    updates = await collect(runner, {**ONESHOT, "config": {"size": "small"}}, {"name": "ada", "n": [1, 2]}, ctx)
    result = outcome(updates)
    assert isinstance(result, Result), result
    assert result.output == {
        "echo": {"config": {"size": "small"}, "input": {"name": "ada", "n": [1, 2]}, "context": ctx.to_dict()}
    }
    logs = [u.message for u in updates if isinstance(u, Log)]
    assert any(line.startswith("oneshot handler: mode echo") for line in logs), logs


async def test_oneshot_container_is_hardened(runner: ContainerRunner) -> None:
    result = outcome(await collect(runner, ONESHOT, {"mode": "probe"}, context()))
    assert isinstance(result, Result), result
    assert result.output == {
        "uid": 65534,
        "gid": 65534,
        "cap_eff": "0000000000000000",
        "no_new_privs": 1,
        "root_writable": False,
        "tmp_writable": True,
    }


async def test_numeric_users_run_as_given_and_root_never(runner: ContainerRunner) -> None:
    for user, ids in [("1234", (1234, 1234)), ("0001000:02000", (1000, 2000))]:
        result = outcome(await collect(runner, {**ONESHOT, "user": user}, {"mode": "probe"}, context()))
        assert isinstance(result, Result), result
        assert (result.output["uid"], result.output["gid"]) == ids, user
    # configs that bypassed the checks at save (older versions, rendered values) fail before
    # Docker is asked anything (the image does not exist: asking would fail differently)
    for user in ("00", "0000:0000", "65534:0", "root", "nobody"):
        config = {"image": "neoactions-test/absent:none", "user": user}
        failure = outcome(await collect(runner, config, {"mode": "probe"}, context()))
        assert isinstance(failure, Failure) and failure.error.type == "invalid_config", (user, failure)
        assert "user" in failure.error.message and not failure.error.retryable


async def test_a_tenant_cannot_take_every_container_slot() -> None:
    """Tenant a's containers that never end hold one of two slots; tenant b's still runs at once."""
    r = ContainerRunner({"container_health_interval": 3600, "container_max_concurrency": 2})
    assert r.tenant_concurrency == 1
    hogs = [asyncio.ensure_future(collect(r, ONESHOT, {"mode": "sleep"}, context(60, tenant="a"))) for _ in range(3)]
    try:
        await wait_for(lambda: len(containers_of(r)) == 1, what="tenant a's first container")
        started = time.monotonic()
        quick = outcome(await collect(r, ONESHOT, {"n": 1}, context(20, tenant="b")))
        assert isinstance(quick, Result), quick
        assert time.monotonic() - started < 15, "b waited for a's containers"
        running = docker("ps", "-q", "--filter", f"label={INSTANCE_LABEL}={r.engine.instance}").split()
        assert len(running) == 1, "a's other containers still wait for a's share"
    finally:
        for hog in hogs:
            hog.cancel()
        await asyncio.gather(*hogs, return_exceptions=True)
        await r.aclose()
    assert containers_of(r) == []


async def test_running_container_has_limits_and_is_removed_when_cancelled(runner: ContainerRunner) -> None:
    config = {**ONESHOT, "memory_mb": 48, "pids": 20, "cpus": 0.5, "tmpfs_mb": 8}
    task = asyncio.ensure_future(collect(runner, config, {"mode": "sleep"}, context(60)))
    ids = await wait_for(lambda: containers_of(runner), what="a running container")
    host = json.loads(docker("inspect", "--format", "{{json .HostConfig}}", ids[0]))
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == "none"
    assert host["PidsLimit"] == 20
    assert host["Memory"] == 48 * 1024 * 1024 and host["MemorySwap"] == 48 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert "size=8m" in host["Tmpfs"]["/tmp"]
    labels = json.loads(docker("inspect", "--format", "{{json .Config.Labels}}", ids[0]))
    assert labels["dev.neoactions.managed"] == "true"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: not containers_of(runner), what="the cancelled attempt's container removed")

    # cancelled while docker is still creating the container: removed once it exists
    for delay in (0.0, 0.01, 0.03, 0.06):
        task = asyncio.ensure_future(collect(runner, config, {"mode": "sleep"}, context(60)))
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(1.0)  # any creation still running has finished by now
    await wait_for(lambda: not containers_of(runner), what="containers of cancelled starts removed")


async def test_memory_limit_kills_the_container_and_fails_the_attempt(runner: ContainerRunner) -> None:
    failure = outcome(await collect(runner, {**ONESHOT, "memory_mb": 32}, {"mode": "mem"}, context()))
    assert isinstance(failure, Failure), failure
    assert failure.error.type == "oom_killed" and not failure.timed_out and not failure.error.retryable
    assert "32 MiB" in failure.error.message


async def test_pids_limit_refuses_forks_and_fails_the_attempt(runner: ContainerRunner) -> None:
    updates = await collect(runner, {**ONESHOT, "pids": 8}, {"mode": "fork"}, context())
    failure = outcome(updates)
    assert isinstance(failure, Failure), failure
    assert failure.error.type == "pids_limit" and not failure.error.retryable
    assert "process limit of 8" in failure.error.message


async def test_time_limit_kills_the_container_and_times_out_the_attempt(runner: ContainerRunner) -> None:
    started = time.monotonic()
    failure = outcome(await collect(runner, ONESHOT, {"mode": "sleep"}, context(1.5)))
    elapsed = time.monotonic() - started
    assert isinstance(failure, Failure), failure
    assert failure.timed_out and failure.error.type == "timeout" and failure.error.retryable
    assert "killed" in failure.error.message
    assert elapsed < 2.5, "the sleeping container was stopped at its deadline"
    await wait_for(lambda: not containers_of(runner), what="the timed-out container removed")


@pytest.fixture
def host_listener() -> Any:
    """A TCP server on every host address, and the docker bridge gateway to reach it by."""
    ipam = json.loads(docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"))[0]
    # docker's default bridge leaves Gateway out of its IPAM config: it is the subnet's first address
    gateway = ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(10)
    try:
        yield gateway, server.getsockname()[1]
    finally:
        server.close()


async def test_network_is_refused_unless_the_action_allows_it(runner: ContainerRunner, host_listener: Any) -> None:
    gateway, port = host_listener
    probe = {"mode": "net", "host": gateway, "port": port}
    denied = outcome(await collect(runner, ONESHOT, probe, context()))
    assert isinstance(denied, Result), denied
    assert denied.output["connected"] is False
    assert "unreachable" in denied.output["error"].lower()

    allowed = outcome(await collect(runner, {**ONESHOT, "network": True}, probe, context()))
    assert isinstance(allowed, Result), allowed
    assert allowed.output == {"connected": True}


async def test_exit_codes_and_bad_output_are_classified(runner: ContainerRunner) -> None:
    updates = await collect(runner, ONESHOT, {"mode": "fail"}, context())
    failed = outcome(updates)
    assert isinstance(failed, Failure) and failed.error.type == "exit_code" and not failed.error.retryable
    assert "code 3" in failed.error.message and "the handler gives up" in failed.error.message
    assert any(isinstance(u, Log) and u.message == "the handler gives up" for u in updates)

    temp = outcome(await collect(runner, ONESHOT, {"mode": "tempfail"}, context()))
    assert isinstance(temp, Failure) and temp.error.type == "exit_code" and temp.error.retryable

    declared = outcome(await collect(runner, ONESHOT, {"mode": "declared"}, context()))
    assert isinstance(declared, Failure)
    assert (declared.error.type, declared.error.message, declared.error.retryable) == (
        "quota_exceeded",
        "monthly quota used up",
        False,
    )

    garbage = outcome(await collect(runner, ONESHOT, {"mode": "garbage"}, context()))
    assert isinstance(garbage, Failure) and garbage.error.type == "invalid_output"

    big = outcome(await collect(runner, {**ONESHOT, "max_output_bytes": 64}, {"pad": "x" * 200}, context()))
    assert isinstance(big, Failure) and big.error.type == "output_too_large"


async def test_missing_image_fails_without_retry(runner: ContainerRunner) -> None:
    failure = outcome(await collect(runner, {"image": "neoactions-test/not-built:never"}, {}, context()))
    assert isinstance(failure, Failure) and failure.error.type == "image_not_found" and not failure.error.retryable


async def test_image_archive_is_loaded_only_when_its_digest_matches(runner: ContainerRunner, tmp_path: Path) -> None:
    tag = f"neoactions-test/archived:{runner.engine.instance}"
    archive = tmp_path / "image.tar"
    docker("tag", ONESHOT_IMAGE, tag)
    try:
        docker("save", "-o", str(archive), tag)
        docker("rmi", tag)  # only the tag goes: the layers stay under the one-shot tag
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()

        wrong = outcome(
            await collect(runner, {"image": tag, "archive": {"path": str(archive), "sha256": "0" * 64}}, {}, context())
        )
        assert isinstance(wrong, Failure) and wrong.error.type == "image_digest_mismatch"
        assert not wrong.error.retryable and digest in wrong.error.message
        assert not docker_ok("image", "inspect", tag), "a mismatching archive is not loaded"

        config = {"image": tag, "archive": {"path": str(archive), "sha256": digest}}
        ok = outcome(await collect(runner, config, {"from": "archive"}, context()))
        assert isinstance(ok, Result) and ok.output["echo"]["input"] == {"from": "archive"}
        docker("image", "inspect", tag)  # loaded
    finally:
        docker_ok("rmi", tag)


def test_config_schema_and_checks() -> None:
    registry = HandlerRegistry()
    register_container(registry)
    ht = registry.get("container")
    assert ht.config_schema is CONFIG_SCHEMA
    ht.check_config({"image": "x", "mode": "sidecar", "memory_mb": 64, "pool": {"max_size": 3}})
    ht.check_config({"archive": {"path": "/a.tar", "sha256": "a" * 64}})
    for bad, field in [
        ({"image": "x", "user": "root"}, "handler.config.user"),
        ({"image": "x", "user": "0:0"}, "handler.config.user"),
        ({"image": "x", "user": "00"}, "handler.config.user"),
        ({"image": "x", "user": "0000:0000"}, "handler.config.user"),
        ({"image": "x", "user": "65534:0"}, "handler.config.user"),
        ({"image": "x", "user": "nobody"}, "handler.config.user"),
        ({"image": "x", "privileged": True}, "handler.config"),
        ({"image": "x", "memory_mb": 1}, "handler.config.memory_mb"),
        ({"image": "x", "mode": "daemon"}, "handler.config.mode"),
        ({"mode": "oneshot"}, "handler.config"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            ht.check_config(bad)
        assert err.value.violations[0].field == field, (bad, err.value.violations)


# -- sidecar mode ---------------------------------------------------------------------


async def test_tenants_never_share_a_warm_container(runner: ContainerRunner) -> None:
    """Two tenants with the same sidecar config get pools and containers of their own (a
    handler's in-memory state stays its tenant's), and one tenant's busy pool does not hold
    up the other's execution."""
    config = {**SIDECAR, "pool": {"max_size": 1}}
    a = outcome(await collect(runner, config, {}, context(tenant="a")))
    b = outcome(await collect(runner, config, {}, context(tenant="b")))
    assert isinstance(a, Result) and isinstance(b, Result), (a, b)
    assert a.output["tenant"] == "a" and b.output["tenant"] == "b"
    assert a.output["host"] != b.output["host"]
    assert len(runner.pools()) == 2
    busy = asyncio.create_task(collect(runner, config, {"mode": "sleep", "seconds": 5}, context(60, tenant="a")))
    try:
        again = outcome(await collect(runner, config, {}, context(tenant="b")))
        assert isinstance(again, Result) and again.output["host"] == b.output["host"]
        assert not busy.done(), "b waited for a's container"
    finally:
        busy.cancel()
        await asyncio.gather(busy, return_exceptions=True)


async def test_sidecar_containers_stay_warm_and_get_the_context(runner: ContainerRunner) -> None:
    ctx = context()
    timings = []
    results = []
    for i in range(5):
        started = time.perf_counter()
        updates = await collect(runner, SIDECAR, {"i": i}, ctx)
        timings.append(time.perf_counter() - started)
        result = outcome(updates)
        assert isinstance(result, Result), result
        results.append(result.output)
        assert any(isinstance(u, Progress) and u.fraction == 0.5 for u in updates)
        assert any(isinstance(u, Log) and u.message == "mode echo, attempt 1" for u in updates)
    assert [r["echo"] for r in results] == [{"i": i} for i in range(5)]
    assert len({r["host"] for r in results}) == 1, "one warm container served them all"
    first = results[0]
    assert first["greeting"] == "hej" and first["tenant"] == "acme"
    assert first["execution_id"] == ctx.execution_id and first["idempotency_key"] == ctx.idempotency_key
    assert first["traceparent"] == ctx.trace_context["traceparent"]
    assert 0 < first["remaining_seconds"] <= 10
    assert max(timings[1:]) < timings[0], timings
    (pool,) = runner.pools()
    assert pool.started == 1 and pool.size == 1


async def test_killed_sidecar_is_replaced(runner: ContainerRunner) -> None:
    first = outcome(await collect(runner, SIDECAR, {}, context()))
    assert isinstance(first, Result)
    (pool,) = runner.pools()
    (member,) = pool.members()
    docker("kill", member.id)
    await asyncio.sleep(0.1)
    # the next execution finds it dead (a check before reuse) and runs on a fresh container
    pool.recheck_after = 0.0
    second = outcome(await collect(runner, SIDECAR, {}, context()))
    assert isinstance(second, Result), second
    assert second.output["host"] != first.output["host"]
    assert pool.replaced == 1 and pool.started == 2

    # and the periodic health check removes a dead idle container on its own
    (member,) = pool.members()
    docker("kill", member.id)
    await wait_for(lambda: "false" in docker("inspect", "--format", "{{.State.Running}}", member.id), what="dead")
    await runner.maintain()
    assert pool.size == 0 and pool.replaced == 2
    await wait_for(lambda: member.id not in docker("ps", "-aq", "--no-trunc"), what="the dead container removed")
    third = outcome(await collect(runner, SIDECAR, {}, context()))
    assert isinstance(third, Result) and pool.started == 3


async def test_sidecar_memory_and_time_limits_are_classified(runner: ContainerRunner) -> None:
    config = {**SIDECAR, "memory_mb": 96}
    oom = outcome(await collect(runner, config, {"mode": "mem"}, context()))
    assert isinstance(oom, Failure) and oom.error.type == "oom_killed", oom
    slow = outcome(await collect(runner, config, {"mode": "sleep", "seconds": 30}, context(2.0)))
    assert isinstance(slow, Failure) and slow.timed_out and slow.error.type == "timeout", slow
    ok = outcome(await collect(runner, config, {"mode": "echo"}, context()))
    assert isinstance(ok, Result)
    (pool,) = runner.pools()
    assert pool.started == 3, "the OOM-killed and the timed-out containers were not reused"
    assert pool.size == 1


async def test_pool_bounds_its_size_and_expires_idle_containers(runner: ContainerRunner) -> None:
    config = {**SIDECAR, "pool": {"max_size": 1, "idle_seconds": 0.3}}
    outcome(await collect(runner, config, {}, context()))  # warm it up
    started = time.monotonic()
    a, b = await asyncio.gather(
        collect(runner, config, {"mode": "sleep", "seconds": 0.6}, context()),
        collect(runner, config, {"mode": "sleep", "seconds": 0.6}, context()),
    )
    assert isinstance(outcome(a), Result) and isinstance(outcome(b), Result)
    assert time.monotonic() - started >= 1.2, "one container: the two executions ran one after the other"
    (pool,) = runner.pools()
    assert pool.started == 1
    (member,) = pool.members()
    await asyncio.sleep(0.5)
    await runner.maintain()
    assert pool.size == 0
    await wait_for(lambda: member.id not in docker("ps", "-aq", "--no-trunc"), what="the idle container removed")


async def test_sidecar_that_cannot_start_fails_the_attempt(runner: ContainerRunner) -> None:
    config = {**SIDECAR, "command": ["/usr/bin/python3", "-c", "import sys; print('no server here'); sys.exit(4)"]}
    failure = outcome(await collect(runner, config, {}, context()))
    assert isinstance(failure, Failure) and failure.error.type == "sidecar_start_failed", failure
    assert "code 4" in failure.error.message and "no server here" in failure.error.message


async def test_containers_of_a_dead_process_are_swept(runner: ContainerRunner) -> None:
    dead_pid = finished_process_pid()
    session_label = os.environ[LABELS_ENV]
    orphan = docker(
        "create",
        "--label",
        "dev.neoactions.managed=true",
        "--label",
        f"{OWNER_LABEL}={socket.gethostname()}:{dead_pid}",
        "--label",
        session_label,
        ONESHOT_IMAGE,
    )
    alive = docker(
        "create",
        "--label",
        "dev.neoactions.managed=true",
        "--label",
        f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}",
        "--label",
        session_label,
        ONESHOT_IMAGE,
    )
    try:
        # the engine sweeps when it first talks to Docker
        assert isinstance(outcome(await collect(runner, ONESHOT, {}, context())), Result)
        remaining = docker("ps", "-aq", "--no-trunc").split()
        assert orphan not in remaining, "the dead process's container was removed"
        assert alive in remaining, "a live process's container was left alone"
    finally:
        docker_ok("rm", "-f", orphan, alive)
