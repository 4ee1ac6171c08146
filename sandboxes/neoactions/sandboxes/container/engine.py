"""docker-py behind a bounded thread pool, with the hardened container settings.

Every docker-py call blocks, so each runs in the engine's thread pool. Docker
errors are translated here into :class:`ContainerError` with a classification
the runner turns into a failed attempt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors

from neoactions.sandboxes.container.config import ContainerSpec
from neoactions.sandboxes.container.user import UserRefused, parse_user

log = logging.getLogger(__name__)

T = TypeVar("T")

#: every container this service creates carries this label
MANAGED_LABEL = "dev.neoactions.managed"
#: ... and this one, naming the engine that created it
INSTANCE_LABEL = "dev.neoactions.instance"
#: ... and ``host:pid`` of the process that owns it (to sweep a dead process's containers)
OWNER_LABEL = "dev.neoactions.owner"


class ContainerError(Exception):
    """A container could not be run; ``type`` classifies the failed attempt."""

    def __init__(self, type: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.retryable = retryable


class PidsWatch:
    """Reads the container's cgroup ``pids.events``: did a fork hit the pids limit?

    The cgroup disappears when the container stops, so the file is opened while
    it runs and read whenever the container shows a sign of life (and at the end).
    """

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self.hit = False

    @classmethod
    def open(cls, container_id: str) -> PidsWatch:
        for path in (
            f"/sys/fs/cgroup/pids/docker/{container_id}/pids.events",
            f"/sys/fs/cgroup/pids/system.slice/docker-{container_id}.scope/pids.events",
            f"/sys/fs/cgroup/docker/{container_id}/pids.events",
            f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/pids.events",
        ):
            try:
                return cls(os.open(path, os.O_RDONLY))
            except OSError:
                continue
        return cls(None)

    def poll(self) -> bool:
        """True once any fork was refused (sticky)."""
        if self.hit or self._fd is None:
            return self.hit
        try:
            text = os.pread(self._fd, 256, 0).decode()
        except OSError:  # the cgroup is gone
            return self.hit
        for line in text.splitlines():
            name, _, count = line.partition(" ")
            if name == "max" and count.strip().isdigit() and int(count) > 0:
                self.hit = True
        return self.hit

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class DockerEngine:
    """One docker-py API client, used from a bounded pool of threads."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        threads: int = 16,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._base_url = base_url
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="docker-api")
        self._api: docker.APIClient | None = None
        self.instance = uuid.uuid4().hex[:12]
        self.labels: dict[str, str] = {
            **labels_from_env(),
            **dict(labels or {}),
            MANAGED_LABEL: "true",
            INSTANCE_LABEL: self.instance,
            OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
        }
        self._archives: dict[str, str] = {}
        self._archive_lock = asyncio.Lock()
        self._cleanups: set[asyncio.Future[None]] = set()

    # -- plumbing -----------------------------------------------------------------

    @property
    def api(self) -> docker.APIClient:
        """The API client, created on first use (call from a pool thread)."""
        if self._api is None:
            try:
                kwargs: dict[str, Any] = {"version": "auto", "timeout": 60}
                if self._base_url:
                    kwargs["base_url"] = self._base_url
                else:
                    kwargs["base_url"] = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
                api = docker.APIClient(**kwargs)
            except docker.errors.DockerException as exc:
                raise ContainerError(
                    "docker_unavailable", f"cannot reach the Docker engine: {exc}", retryable=True
                ) from None
            self._api = api
            self.sweep_orphans()
        return self._api

    def sweep_orphans(self) -> list[str]:
        """Remove containers left by a process of this host that died without cleaning up. Blocking."""
        host = socket.gethostname()
        removed: list[str] = []
        try:
            found = self.api.containers(all=True, filters={"label": f"{MANAGED_LABEL}=true"})
        except docker.errors.DockerException:
            return removed
        for c in found:
            owner_host, _, pid = str((c.get("Labels") or {}).get(OWNER_LABEL, "")).rpartition(":")
            if owner_host != host or not pid.isdigit() or _process_alive(int(pid)):
                continue
            try:
                self._remove(str(c["Id"]))
                removed.append(str(c["Id"]))
            except docker.errors.DockerException as exc:
                log.warning("could not remove orphaned container %s: %s", c["Id"], exc)
        if removed:
            log.info("removed %d container(s) left by dead processes", len(removed))
        return removed

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking docker-py call in the pool, translating engine errors."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.invoke(fn, *args, **kwargs))

    def invoke(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` here (in a pool thread), translating engine errors into :class:`ContainerError`."""
        try:
            return fn(*args, **kwargs)
        except ContainerError:
            raise
        except docker.errors.ImageNotFound as exc:
            raise ContainerError("image_not_found", _explain(exc), retryable=False) from None
        except docker.errors.NotFound as exc:
            raise ContainerError("container_gone", _explain(exc), retryable=True) from None
        except docker.errors.APIError as exc:
            retryable = exc.status_code is None or exc.status_code >= 500
            raise ContainerError("docker_error", _explain(exc), retryable=retryable) from None
        except (docker.errors.DockerException, OSError) as exc:
            raise ContainerError(
                "docker_unavailable", f"Docker engine: {type(exc).__name__}: {exc}", retryable=True
            ) from None

    # -- images -------------------------------------------------------------------

    async def resolve_image(self, spec: ContainerSpec) -> str:
        """The image reference to run: the tag, or the image loaded from the verified archive."""
        if not spec.archive_path:
            return spec.image
        async with self._archive_lock:
            cached = self._archives.get(spec.archive_sha256)
            if cached is not None and await self.call(self._image_exists, cached):
                return spec.image or cached
            ref = await self.call(self._load_archive, spec.archive_path, spec.archive_sha256)
            self._archives[spec.archive_sha256] = ref
            return spec.image or ref

    def _image_exists(self, ref: str) -> bool:
        try:
            self.api.inspect_image(ref)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            return False
        return True

    def _load_archive(self, path: str, sha256: str) -> str:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise ContainerError("image_archive_unreadable", f"image archive {path}: {exc}", retryable=False) from None
        if digest.hexdigest() != sha256:
            raise ContainerError(
                "image_digest_mismatch",
                f"image archive {path} has sha256 {digest.hexdigest()}, expected {sha256}: not loaded",
                retryable=False,
            )
        with open(path, "rb") as f:
            messages = list(self.api.load_image(f))  # type: ignore[no-untyped-call]
        ref = ""
        for m in messages:
            if "error" in m:
                raise ContainerError("image_load_failed", str(m["error"]), retryable=False)
            stream = str(m.get("stream", ""))
            for prefix in ("Loaded image ID: ", "Loaded image: "):
                if stream.startswith(prefix):
                    ref = ref or stream.removeprefix(prefix).strip()
        if not ref:
            raise ContainerError("image_load_failed", f"loading {path} named no image: {messages!r}", retryable=False)
        log.info("loaded image %s from %s (sha256 %s)", ref, path, sha256)
        return ref

    # -- containers ---------------------------------------------------------------

    def host_config(self, spec: ContainerSpec, binds: Mapping[str, Mapping[str, str]] | None = None) -> Any:
        """The hardened host config: no capabilities, no new privileges, read-only root, limits."""
        limits = spec.limits
        tmpfs = {"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmpfs_mb}m,mode=1777"}
        return self.api.create_host_config(
            network_mode="bridge" if spec.network else "none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            tmpfs=tmpfs if limits.tmpfs_mb > 0 else None,
            pids_limit=limits.pids,
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",  # no swap: the limit is the limit
            nano_cpus=int(limits.cpus * 1e9),
            ipc_mode="private",
            binds=dict(binds) if binds else None,
        )

    def create(
        self,
        spec: ContainerSpec,
        image: str,
        name: str,
        *,
        stdin: bool = False,
        env: Mapping[str, str] | None = None,
        binds: Mapping[str, Mapping[str, str]] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Create (not start) a hardened container; returns its id. Blocking."""
        environment = {**dict(spec.env), **dict(env or {})}
        try:
            # numbers only, never uid 0 nor gid 0, whatever built the spec
            user = str(parse_user(spec.user))
        except UserRefused as exc:
            raise ContainerError("invalid_config", f"user: {exc}", retryable=False) from None
        created = self.api.create_container(
            image,
            command=list(spec.command) if spec.command is not None else None,
            name=name,
            user=user,
            environment=environment,
            labels={**self.labels, **dict(labels or {})},
            stdin_open=stdin,
            detach=not stdin,
            host_config=self.host_config(spec, binds),
        )
        return str(created["Id"])

    def state(self, ref: str) -> dict[str, Any]:
        """The container's ``State`` (Status, ExitCode, OOMKilled, ...). Blocking."""
        return dict(self.api.inspect_container(ref)["State"])

    def logs_tail(self, ref: str, lines: int = 20) -> str:
        try:
            raw = self.api.logs(ref, stdout=True, stderr=True, tail=lines)
        except docker.errors.APIError:
            return ""
        return bytes(raw).decode("utf-8", "replace").strip()

    def _remove(self, ref: str) -> None:
        try:
            self.api.remove_container(ref, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # removal already in progress
                return
            raise

    async def remove(self, ref: str) -> None:
        """Force-remove a container, even when the awaiting task is cancelled meanwhile."""
        await asyncio.shield(self.remove_soon(ref))

    def remove_soon(
        self,
        ref: str,
        *,
        after: asyncio.Future[Any] | None = None,
        then: Callable[[], None] | None = None,
    ) -> asyncio.Future[None]:
        """Remove ``ref`` in the background; :meth:`aclose` waits for it if nobody else does.

        ``after``: the (shielded) future creating the container — removal waits for it,
        so a container whose creation was still running when its attempt was cancelled
        is removed too. ``then``: blocking cleanup to run after the removal.
        """

        async def run() -> None:
            if after is not None and not after.done():
                await asyncio.wait([after])
            await self.call(self._remove_logged, ref)
            if then is not None:
                await self.call(then)

        task = asyncio.ensure_future(run())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    def _remove_logged(self, ref: str) -> None:
        try:
            self._remove(ref)
        except Exception:
            log.exception("could not remove container %s", ref)

    def list_own(self) -> list[str]:
        """Ids of every container (running or not) this engine created. Blocking."""
        found = self.api.containers(all=True, filters={"label": f"{INSTANCE_LABEL}={self.instance}"})
        return [str(c["Id"]) for c in found]

    async def aclose(self) -> None:
        """Wait for pending removals, remove anything of ours still there, stop the threads."""
        if self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)
        if self._api is not None:
            try:
                leftovers = await self.call(self.list_own)
                await asyncio.gather(*(self.remove(c) for c in leftovers), return_exceptions=True)
            except ContainerError as exc:
                log.warning("could not sweep containers at close: %s", exc.message)
            self._api.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


#: extra labels for every container, ``key=value,key=value`` (e.g. to find a test run's containers)
LABELS_ENV = "NEOACTIONS_CONTAINER_LABELS"


def labels_from_env() -> dict[str, str]:
    out: dict[str, str] = {}
    for item in os.environ.get(LABELS_ENV, "").split(","):
        key, sep, value = item.strip().partition("=")
        if key and sep:
            out[key] = value
    return out


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


def prepare_socket_dir(path: Path, owner: tuple[int, int] | None) -> None:
    """A directory the container's user can create its socket in. Blocking."""
    path.mkdir(parents=True, exist_ok=False)
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)
        path.chmod(0o700)
    else:
        path.chmod(0o777)


__all__ = [
    "INSTANCE_LABEL",
    "LABELS_ENV",
    "MANAGED_LABEL",
    "OWNER_LABEL",
    "ContainerError",
    "DockerEngine",
    "PidsWatch",
    "new_name",
    "prepare_socket_dir",
]
