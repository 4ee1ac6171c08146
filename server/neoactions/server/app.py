"""``serve``: wire the store, runners, bus, engine and gRPC server, and own their lifetimes.

Shutdown order: a signal sets the stop event → the server stops taking calls →
the engine stops claiming and consuming, in-flight executions get a grace period →
the rest is cancelled and its leases released, so another process (or the next
start) takes it over at once → resources close in reverse order.

Roles: ``api`` serves the whole API and runs only the ``sync`` work its callers wait
for; ``worker`` serves only gRPC health (for probes) and runs the work; ``all`` does
both.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from neoactions.domain.errors import InvalidArgument, Unavailable
from neoactions.server.api.authz import Authentication
from neoactions.server.api.servicers import SERVICE_NAMES, add_servicers
from neoactions.server.bus import InProcessUpdateBus, UpdateBus
from neoactions.server.engine import Engine
from neoactions.server.flow import create_flow_control
from neoactions.server.keys import KeyAccess, bootstrap
from neoactions.server.logjson import configure_logging
from neoactions.server.persistence import open_store
from neoactions.server.persistence.changefeed import change_feed_for
from neoactions.server.pluginhost.host import with_plugin_changes
from neoactions.server.queue.redisstream import RedisStreamQueue
from neoactions.server.relay import RelayedUpdateBus
from neoactions.server.runners import HandlerRegistry
from neoactions.server.settings import Settings
from neoactions.server.startup import StartupError, port_free, port_taken, prepare_database, redis_unreachable
from neoactions.server.store import Store
from neoactions.server.telemetry.setup import Observability
from neoactions.server.tls import describe, server_credentials

log = logging.getLogger("neoactions")

#: the default of the ``max_message_bytes`` setting
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
#: the gRPC server's stop gets its grace period plus this much, then the shutdown goes on
_STOP_MARGIN_SECONDS = 2.0


@dataclass(slots=True)
class Running:
    engine: Engine
    server: grpc.aio.Server
    port: int
    #: the HTTP surface's port (0: no HTTP served)
    http_port: int = 0
    #: the Prometheus metrics port (0: no metrics served)
    metrics_port: int = 0


#: net allocations between young collections (CPython's default is 700). An action leaves
#: ~45 tracked objects alive for a while (updates kept for resuming watchers, rows, futures): at 700,
#: a 10,000-event burst made ~1,000 young, ~90 middle and 8 full collections, 7 % of the
#: server's CPU, the full ones pausing the loop ~25 ms each; at 10,000: ~45 young
#: collections of ~4 ms, 3 middle, no full one
_YOUNG_COLLECTION_EVERY = 10_000


def _freeze_startup_objects() -> None:
    """Move everything start-up made (modules, compiled triggers and templates, runner
    state) out of the collector's reach. A full collection walks every tracked object: with
    them it paused the event loop for 50-60 ms, the p99 of publish to handler start. Then
    collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


@contextlib.asynccontextmanager
async def running(settings: Settings, reuse_port: bool = False) -> AsyncIterator[Running]:
    """The whole service, started; leaving the block shuts it down gracefully. With
    ``reuse_port``, other processes may listen on the same port (a supervised group)."""
    async with contextlib.AsyncExitStack() as stack:
        if settings.port and not reuse_port and not port_free(settings.host, settings.port):
            raise port_taken(settings.host, settings.port)  # before the store is opened and work claimed
        tls = server_credentials(settings)  # a wrong certificate stops the start before anything opens
        observability = Observability(settings)
        try:
            observability.start()  # traces from the OTEL_* variables, metrics on metrics_port
        except (ValueError, OSError) as exc:
            raise StartupError(f"observability: {exc} (hint: see docs/observability.md)") from None
        stack.push_async_callback(observability.aclose)
        if not settings.database_url:
            try:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StartupError(
                    f"cannot create the data directory {settings.data_dir}: {exc.strerror}"
                    " (hint: choose another with --data-dir or NEOACTIONS_DATA_DIR)"
                ) from None
        else:
            await prepare_database(settings.database_url)
        store = open_store(settings.store_url)
        await store.open()
        stack.push_async_callback(store.close)

        registry = HandlerRegistry(
            {
                "data_dir": str(settings.data_dir),
                "python_handler_modules": list(settings.python_handler_modules),
                **settings.runner_settings,
            }
        )
        registry.load_entry_points()
        stack.push_async_callback(registry.aclose)
        await registry.start()

        queue = RedisStreamQueue(settings.redis_url, settings.queue_prefix) if settings.redis_url else None
        if queue is not None:
            try:
                await queue.open()
            except Unavailable as exc:
                # later outages are waited out (queued work stays in the store's outbox), but a
                # Redis that does not answer at start is most likely a wrong URL: say so now
                raise redis_unreachable(settings.redis_url, exc.message) from None
            stack.push_async_callback(queue.close)
        elif settings.role != "all":
            log.warning("role %s without a redis_url: queued work stays in this process", settings.role)

        flow = create_flow_control(settings.redis_url, settings.flow_control, prefix=settings.queue_prefix)
        stack.push_async_callback(flow.aclose)

        changes = change_feed_for(settings.store_url)
        local = InProcessUpdateBus()
        bus: UpdateBus = local
        if settings.redis_url:
            # watchers see the executions every process runs, not only this one's
            relay = RelayedUpdateBus(local, settings.redis_url, settings.queue_prefix)
            await relay.start()
            stack.push_async_callback(relay.aclose)
            bus = relay
        secured = settings.authentication == "api_keys"
        if secured:
            await _bootstrap_key(store, settings)
        else:
            log.warning("authentication is off (authentication: none): every caller may do everything")
        engine = Engine(store, registry, bus, settings, changes, queue, flow, access=KeyAccess() if secured else None)
        engine.keys.start()
        stack.push_async_callback(engine.keys.aclose)
        # one feed for action and plugin changes made by other processes
        await changes.start(*with_plugin_changes(engine.actions.reload, engine.actions.loaded_tenants, engine.plugins))
        stack.push_async_callback(changes.close)
        await engine.start()
        observability.watch(engine)
        stack.push_async_callback(observability.stop_loops)  # before the engine stops
        stack.push_async_callback(engine.stop, settings.shutdown_grace_seconds)
        _freeze_startup_objects()

        server = grpc.aio.server(
            interceptors=[*observability.interceptors(), *([Authentication(engine.keys)] if secured else [])],
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", int(reuse_port)),
            ],
        )
        services: tuple[str, ...] = ()
        if settings.role != "worker":
            add_servicers(server, engine)
            services = SERVICE_NAMES
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        try:
            address = f"{settings.host}:{settings.port}"
            port = server.add_secure_port(address, tls) if tls is not None else server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if port == 0:
            raise port_taken(settings.host, settings.port)
        await server.start()
        for name in ("", *services):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

        async def stop_intake() -> None:
            for name in ("", *services):
                await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            # Stop taking calls, let calls in flight finish within the grace period. grpc.aio's
            # stop can hang past its grace (seen under load with several processes): bounded
            grace = settings.shutdown_grace_seconds
            try:
                await asyncio.wait_for(server.stop(grace), grace + _STOP_MARGIN_SECONDS)
            except TimeoutError:
                log.warning("the gRPC server did not stop within %gs; going on with the shutdown", grace)

        stack.push_async_callback(stop_intake)
        http_port = await _serve_http(stack, engine, settings, reuse_port)
        log.info(
            "neoactions %s serving on %s:%d, %s (store: %s, handler types: %s)",
            settings.role,
            settings.host,
            port,
            describe(settings),
            "postgresql" if settings.database_url else settings.data_dir,
            ", ".join(registry.names()),
        )
        yield Running(engine, server, port, http_port, observability.metrics_port)


async def _serve_http(stack: contextlib.AsyncExitStack, engine: Engine, settings: Settings, reuse_port: bool) -> int:
    """The HTTP surface (docs/http.md) when ``http_port`` is set, in this event loop; it stops
    taking requests first at shutdown. Returns its port (0: none)."""
    if settings.http_port < 0 or settings.role == "worker":
        return 0
    from neoactions.server.web import http_server

    try:
        return await stack.enter_async_context(http_server(engine, settings, reuse_port))
    except OSError as exc:
        raise StartupError(
            f"cannot listen for HTTP on {settings.host}:{settings.http_port}: {exc.strerror or exc}"
            " (hint: choose another with --http-port or NEOACTIONS_HTTP_PORT)"
        ) from None
    except ValueError as exc:
        raise StartupError(f"{exc} (hint: see docs/http.md)") from None


async def _bootstrap_key(store: Store, settings: Settings) -> None:
    """The first admin key, on a first start with no key at all (SPEC §9)."""
    path = settings.bootstrap_key_path
    try:
        created = await bootstrap(store, path)
    except (OSError, InvalidArgument) as exc:
        raise StartupError(
            f"cannot create the first admin key: {getattr(exc, 'message', exc)}"
            " (hint: check --bootstrap-key-file / NEOACTIONS_BOOTSTRAP_KEY_FILE)"
        ) from None
    if created is None:
        return
    token, written = created
    if written is not None:
        log.info("created the first admin API key of tenant admin; it is in %s (readable by you only)", written)
    else:
        # printed once, on standard output only (never in the log)
        print(f"first admin API key of tenant admin (shown once, keep it safe): {token}", flush=True)


def log_tasks() -> None:
    """SIGUSR1: log where every task of the event loop waits (what a stop that hangs waits for)."""
    for task in asyncio.all_tasks():
        stack = "".join(f"{f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}; " for f in task.get_stack(limit=12))
        log.warning("task %s waits at: %s", task.get_name(), stack or "(no frames)")


def _announce(settings: Settings, port: int) -> None:
    print(f"neoactions listening on {settings.host}:{port}", flush=True)


async def serve(
    settings: Settings, reuse_port: bool = False, on_ready: Callable[[Settings, int], None] = _announce
) -> None:
    """Run until SIGINT/SIGTERM; ``on_ready`` is told the port once the service serves."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, log_tasks)
    async with running(settings, reuse_port) as r:
        on_ready(settings, r.port)
        if r.http_port:
            print(f"neoactions http listening on {settings.host}:{r.http_port}", flush=True)
        await stop.wait()
        log.info("stopping: no new calls, draining for %gs", settings.shutdown_grace_seconds)


def run(settings: Settings, reuse_port: bool = False, on_ready: Callable[[Settings, int], None] = _announce) -> None:
    """Serve until a signal; with ``processes`` > 1, supervise that many serving processes."""
    configure_logging(settings.log_level, settings.log_format, settings.log_payloads)
    if settings.processes > 1:
        from neoactions.server.supervisor import supervise

        raise SystemExit(supervise(settings))
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            asyncio.run(serve(settings, reuse_port, on_ready))
        else:
            uvloop.run(serve(settings, reuse_port, on_ready))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


__all__ = ["Running", "run", "running", "serve"]
