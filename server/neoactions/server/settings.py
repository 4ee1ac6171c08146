"""Service settings, from flags, ``NEOACTIONS_*`` environment variables or a config file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

ROLES = ("api", "worker", "all")


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    #: embedded store directory (used when no database_url is set)
    data_dir: Path = Path(".neoactions")
    #: ``postgresql://...`` selects PostgreSQL
    database_url: str = ""
    #: ``redis://...``: queued mode through Redis Streams (else an in-process queue)
    redis_url: str = ""
    #: ``api`` (accept calls, enqueue), ``worker`` (run work) or ``all``
    role: str = "all"
    #: a process owns a running execution for this long unless its heartbeat extends it;
    #: also how long a killed process's work waits before another takes it over
    lease_seconds: float = 15.0
    #: how often a worker looks for due work in the store when nothing woke it earlier
    poll_interval_seconds: float = 0.5
    #: a queue entry unacknowledged (and untouched) this long is reclaimed by another worker
    visibility_timeout_seconds: float = 30.0
    #: how often queued executions that are due but not on the queue are enqueued
    outbox_sweep_seconds: float = 1.0
    #: a queued execution marked enqueued this long ago but never taken is enqueued again
    requeue_after_seconds: float = 300.0
    #: events with the same dedup key within this window are accepted once
    dedup_window_seconds: float = 24 * 3600.0
    #: Redis key prefix of the work queue (one per deployment)
    queue_prefix: str = "neoactions"
    #: server processes on this host, sharing the port (``SO_REUSEPORT``); each runs its own
    #: engine. More than one needs PostgreSQL (``database_url``), Redis (``redis_url``, so
    #: limits hold across them) and a fixed ``port``
    processes: int = 1
    #: executions run at once in each process
    concurrency: int = 256
    #: largest accepted event (data + metadata JSON), bytes
    max_event_bytes: int = 256 * 1024
    max_batch_events: int = 1000
    #: a replay job re-publishes at most this many stored events a second (a token bucket), so
    #: live traffic keeps its share; a ReplayEvents request may ask for less
    replay_events_per_second: float = 1000.0
    #: largest gRPC message the server receives or sends, bytes
    max_message_bytes: int = 32 * 1024 * 1024
    #: actions one tenant may have (creating one more is RESOURCE_EXHAUSTED)
    max_actions_per_tenant: int = 10_000
    #: conditions in one action's trigger, groups and their members counted recursively
    max_conditions_per_action: int = 100
    #: TLS (docs/security.md): the server's certificate chain and its private key, PEM files;
    #: both or neither (plaintext)
    tls_cert: str = ""
    tls_key: str = ""
    #: mutual TLS: only clients presenting a certificate signed by this CA (PEM) may connect
    tls_client_ca: str = ""
    #: worst-case cost of one ``cel`` condition, in steps of about 0.1 µs (estimated when an
    #: action is saved; see docs/matching.md)
    cel_cost_budget: int = 50_000
    #: longest list or map a ``cel`` macro (all, exists, map...) iterates; larger: no match
    max_cel_list_items: int = 256
    #: values of the event a ``cel`` condition reads, counted recursively; more: no match
    max_cel_input_values: int = 1_000
    #: seconds in-flight work may finish in after a stop signal
    shutdown_grace_seconds: float = 10.0
    max_action_timeout_seconds: float = 24 * 3600.0
    #: attempts of one series cut by their process stopping (crash, kill) before the execution
    #: is dead-lettered: a handler that kills its process must not loop across restarts
    max_interrupted_attempts: int = 3
    #: limits of rendering one handler config (docs/configuration.md, "Templates"): items a
    #: ``range()`` may produce; characters of any value built and of the whole output; loop
    #: steps; seconds (the attempt's timeout too, when sooner)
    template_max_range: int = 10_000
    template_max_length: int = 1_048_576
    template_max_steps: int = 100_000
    template_max_seconds: float = 1.0
    log_level: str = "info"
    #: observability (docs/observability.md). ``json`` log lines, ``text`` for people, or ``auto``:
    #: text when stderr is a terminal
    log_format: str = "auto"
    #: log event data and handler output (debugging only: they may hold personal data)
    log_payloads: bool = False
    #: Prometheus metrics at ``http://metrics_host:metrics_port/metrics``; -1: none, 0: a free port
    metrics_port: int = -1
    metrics_host: str = "127.0.0.1"
    #: label metrics with action names (at most ``metrics_max_actions`` per process, the rest ``other``)
    metrics_action_labels: bool = False
    metrics_max_actions: int = 100
    #: action health over the last ``health_window_seconds``, judged once ``health_min_executions``
    #: ended in it: degraded/critical at these error rates (0-1) or p95 durations (seconds; 0: off)
    health_window_seconds: float = 300.0
    health_min_executions: int = 5
    health_degraded_error_rate: float = 0.1
    health_critical_error_rate: float = 0.5
    health_degraded_p95_seconds: float = 0.0
    health_critical_p95_seconds: float = 0.0
    #: how often each tenant's action health is evaluated and alerts published; 0: never
    alerts_interval_seconds: float = 30.0
    #: modules (with their submodules) whose functions ``python`` actions may run, besides the
    #: ``neoactions.handlers`` entry points; comma-separated in the environment
    python_handler_modules: list[str] = field(default_factory=list)
    #: the master key sealing secrets (base64 of 32 random bytes; ``NEOACTIONS_MASTER_KEY``),
    #: or a file holding it; with neither, the embedded store generates ``<data_dir>/master.key``
    master_key: str = ""
    master_key_file: str = ""
    #: keys (base64, or key files) that still open secrets sealed before a rotation; comma-separated
    master_key_previous: list[str] = field(default_factory=list)
    #: where the first admin API key is written (or read from, when the file already holds one)
    #: on a first start with no key; default: ``<data_dir>/admin.key`` on the embedded store,
    #: printed once on standard output with PostgreSQL
    bootstrap_key_file: str = ""
    #: ``api_keys`` (every call needs a key: SPEC §9) or ``none``: no authentication at all,
    #: every caller may do everything — only on a loopback host, for benchmarks and experiments
    authentication: str = "api_keys"
    #: plugins (docs/plugins.md): registries (folders or HTTP(S) URLs of an ``index.json``),
    #: the public-key files of trusted plugin signers (comma-separated in the environment), and
    #: whether unsigned or untrusted plugins may be installed anyway
    plugin_registries: list[str] = field(default_factory=list)
    trusted_plugin_keys: list[str] = field(default_factory=list)
    allow_unsigned_plugins: bool = False
    #: handed to runners via ``HandlerRegistry.settings``
    runner_settings: dict[str, Any] = field(default_factory=dict)
    #: the ``flow_control`` section (``FlowControlConfig.from_mapping``; see docs/flow-control.md)
    flow_control: dict[str, Any] = field(default_factory=dict)
    #: port of the HTTP surface (CloudEvents ingest, signed webhooks, dashboard; docs/http.md):
    #: -1 serves no HTTP, 0 picks a free port
    http_port: int = -1
    #: signed webhook sources: name → {tenant, event_type, scheme, secret_file | secret_env}
    webhook_sources: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse inconsistent settings (``ValueError`` naming the setting)."""
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.lease_seconds <= 0 or self.poll_interval_seconds <= 0 or self.outbox_sweep_seconds <= 0:
            raise ValueError("lease_seconds, poll_interval_seconds and outbox_sweep_seconds must be > 0")
        if self.visibility_timeout_seconds < self.lease_seconds:
            # a reclaimed entry must find its dead consumer's lease expired
            raise ValueError("visibility_timeout_seconds must be >= lease_seconds")
        if self.dedup_window_seconds < 0:
            raise ValueError("dedup_window_seconds must not be negative")
        if self.authentication not in ("api_keys", "none"):
            raise ValueError(f"authentication must be api_keys or none, not {self.authentication!r}")
        if self.authentication == "none" and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("authentication none is allowed only on a loopback host (127.0.0.1, ::1, localhost)")
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        if self.log_format not in ("auto", "json", "text"):
            raise ValueError(f"log_format must be auto, json or text, not {self.log_format!r}")
        if not 0 <= self.health_degraded_error_rate <= self.health_critical_error_rate <= 1:
            raise ValueError("health error rates must satisfy 0 <= degraded <= critical <= 1")
        if self.health_window_seconds <= 0 or self.alerts_interval_seconds < 0 or self.metrics_max_actions < 1:
            raise ValueError("need health_window_seconds > 0, alerts_interval_seconds >= 0, metrics_max_actions >= 1")
        for name in ("max_message_bytes", "max_actions_per_tenant", "max_conditions_per_action"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together: give both (TLS) or neither (plaintext)")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        if self.max_interrupted_attempts < 1:
            raise ValueError("max_interrupted_attempts must be at least 1")
        if min(self.cel_cost_budget, self.max_cel_list_items, self.max_cel_input_values) < 1:
            raise ValueError("cel_cost_budget, max_cel_list_items and max_cel_input_values must be >= 1")
        for name in (
            "template_max_range", "template_max_length", "template_max_steps", "template_max_seconds",
            "replay_events_per_second",
        ):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.processes > 1:
            if not self.database_url:
                raise ValueError("processes > 1 needs database_url: the embedded store is one process's")
            if not self.redis_url:
                raise ValueError("processes > 1 needs redis_url: concurrency and rate limits must be shared")
            if self.port == 0:
                raise ValueError("processes > 1 needs a fixed port: the processes share it")
            if self.http_port == 0:
                raise ValueError("processes > 1 needs a fixed http_port: the processes share it")

    @property
    def runs_work(self) -> bool:
        """Whether this process claims and runs ``async``/``queued`` work."""
        return self.role in ("worker", "all")

    @property
    def bootstrap_key_path(self) -> Path | None:
        """Where the first admin key goes (``None``: printed once)."""
        if self.bootstrap_key_file:
            return Path(self.bootstrap_key_file)
        return None if self.database_url else self.data_dir / "admin.key"

    @property
    def store_url(self) -> str:
        return self.database_url or str(self.data_dir)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Defaults < config file < environment < explicit overrides (flags); ``None`` overrides are ignored."""
        values: dict[str, Any] = {}
        if config_file is not None:
            loaded = yaml.safe_load(config_file.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{config_file}: expected a mapping of settings")
            values.update(loaded)
        for f in fields(cls):
            env = os.environ.get(f"NEOACTIONS_{f.name.upper()}")
            if env is None:
                continue
            if f.name in ("runner_settings", "flow_control", "webhook_sources"):
                parsed = json.loads(env)
                if not isinstance(parsed, dict):
                    raise ValueError(f"NEOACTIONS_{f.name.upper()} must be a JSON object")
                values[f.name] = {**values.get(f.name, {}), **parsed}
            else:
                values[f.name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        out = cls()
        for name, value in values.items():
            default = getattr(out, name)
            if isinstance(default, list) and isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            elif isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif isinstance(default, int | float | Path | str) and not isinstance(value, type(default)):
                value = type(default)(value)
            setattr(out, name, value)
        out.check()
        return out


__all__ = ["ROLES", "Settings"]
