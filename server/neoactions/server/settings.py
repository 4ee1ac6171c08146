"""Service settings, from flags, ``NEOACTIONS_*`` environment variables or a config file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    #: embedded store directory (used when no database_url is set)
    data_dir: Path = Path(".neoactions")
    #: ``postgresql://...`` selects PostgreSQL
    database_url: str = ""
    redis_url: str = ""
    role: str = "all"
    #: executions run at once in this process
    concurrency: int = 64
    #: largest accepted event (data + metadata JSON), bytes
    max_event_bytes: int = 256 * 1024
    max_batch_events: int = 1000
    #: seconds in-flight work may finish in after a stop signal
    shutdown_grace_seconds: float = 10.0
    max_action_timeout_seconds: float = 24 * 3600.0
    log_level: str = "info"
    #: handed to runners via ``HandlerRegistry.settings``
    runner_settings: dict[str, Any] = field(default_factory=dict)

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
            if f.name == "runner_settings":
                parsed = json.loads(env)
                if not isinstance(parsed, dict):
                    raise ValueError("NEOACTIONS_RUNNER_SETTINGS must be a JSON object")
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
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif isinstance(default, int | float | Path | str) and not isinstance(value, type(default)):
                value = type(default)(value)
            setattr(out, name, value)
        return out


__all__ = ["Settings"]
