"""The ``container`` handler type: actions in hardened Docker containers (docker-py).

Two modes. **oneshot**: a fresh container per attempt, the request as JSON on
stdin, the output as JSON on stdout, the exit code deciding the outcome, stderr
streamed as log lines. **sidecar**: warm containers serving the Handler gRPC
protocol (``neoactions.handler.v1``) on a unix socket in a bind-mounted
directory, pooled per image and settings (max size, idle expiry, health checks,
dead containers replaced).

Every container is hardened whatever the config says: all capabilities dropped,
``no-new-privileges``, read-only root with a small ``/tmp`` tmpfs, pids, memory
(no swap) and CPU limits, no network unless the action sets ``network: true``,
a numeric non-root user and group (``65534:65534`` unless other numbers are
given; uid 0, gid 0 and names are refused, see :mod:`.user`), a
label naming this service, and removal after use, on timeout and on
cancellation. Images are local tags (nothing is pulled) or ``docker save``
archives loaded once their sha256 digest matches. Exceeding memory, processes
or time fails the attempt as ``oom_killed``, ``pids_limit`` or a timed-out
``timeout``. Docker calls block, so they run in bounded thread pools.
"""

from __future__ import annotations

from neoactions.sandboxes.container.config import CONFIG_SCHEMA, DEFAULT_USER, ContainerSpec, Limits
from neoactions.sandboxes.container.engine import (
    INSTANCE_LABEL,
    MANAGED_LABEL,
    ContainerError,
    DockerEngine,
)
from neoactions.sandboxes.container.oneshot import EXIT_TEMPFAIL
from neoactions.sandboxes.container.pool import SidecarPool
from neoactions.sandboxes.container.runner import ContainerRunner, register

__all__ = [
    "CONFIG_SCHEMA",
    "DEFAULT_USER",
    "EXIT_TEMPFAIL",
    "INSTANCE_LABEL",
    "MANAGED_LABEL",
    "ContainerError",
    "ContainerRunner",
    "ContainerSpec",
    "DockerEngine",
    "Limits",
    "SidecarPool",
    "register",
]
