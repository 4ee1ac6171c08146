"""The ``wasm`` handler config: what to run and the limits to run it under."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSONObject

MIB = 1 << 20

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_OUTPUT_BYTES = 1 * MIB
DEFAULT_LOG_BYTES = 64 * 1024

#: the largest ``source`` accepted (code is stored with every action version)
MAX_SOURCE_BYTES = 1 * MIB

#: operator maxima of a guest's limits unless the settings say otherwise
#: (``wasm_max_memory_mb``, ``wasm_max_timeout_seconds``): with ``wasm_workers``
#: guests at once, the memory maximum bounds what guests can take of the server
DEFAULT_MAX_MEMORY_MB = 512
DEFAULT_MAX_TIMEOUT_SECONDS = 60.0

DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")

LIMITS_SCHEMA: JSONObject = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 300,
            "description": "wall-clock budget of the guest (CPU included); default 5",
        },
        "memory_mb": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2048,
            "description": "linear memory cap in MiB; default 64 (javascript, module) or 128 (python)",
        },
        "output_bytes": {
            "type": "integer",
            "minimum": 16,
            "maximum": 16 * MIB,
            "description": "cap on the JSON result; default 1 MiB",
        },
        "log_bytes": {
            "type": "integer",
            "minimum": 0,
            "maximum": 4 * MIB,
            "description": "cap on console output turned into log updates; default 64 KiB",
        },
    },
}

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    # other keys are the action's own settings: they reach the guest as input.config
    "additionalProperties": True,
    "properties": {
        "language": {"enum": ["javascript", "python"]},
        "source": {"type": "string", "minLength": 1, "maxLength": MAX_SOURCE_BYTES},
        "module": {
            "type": "string",
            "pattern": DIGEST.pattern,
            "description": "sha256 digest of a WASI command module in the module directory",
        },
        "limits": LIMITS_SCHEMA,
    },
    "oneOf": [
        {"required": ["language", "source"], "not": {"required": ["module"]}},
        {"required": ["module"], "not": {"anyOf": [{"required": ["language"]}, {"required": ["source"]}]}},
    ],
}


@dataclass(frozen=True, slots=True)
class Maxima:
    """The operator's ceiling on every guest's limits (runner settings)."""

    memory_mb: int = DEFAULT_MAX_MEMORY_MB
    timeout_seconds: float = DEFAULT_MAX_TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Maxima:
        memory = int(settings.get("wasm_max_memory_mb", DEFAULT_MAX_MEMORY_MB))
        timeout = float(settings.get("wasm_max_timeout_seconds", DEFAULT_MAX_TIMEOUT_SECONDS))
        if memory < 1 or timeout <= 0:
            raise ValueError("wasm_max_memory_mb must be >= 1 and wasm_max_timeout_seconds > 0")
        return cls(memory_mb=memory, timeout_seconds=timeout)

    def check(self, config: JSONObject) -> None:
        """Refuse limits above the maxima (``InvalidArgument`` naming the field)."""
        raw: dict[str, Any] = dict(config.get("limits") or {})
        memory = raw.get("memory_mb")
        if isinstance(memory, int | float) and memory > self.memory_mb:
            raise InvalidArgument.field(
                "limits.memory_mb",
                f"{memory:g} MiB is above this server's maximum of {self.memory_mb} MiB per guest "
                "(the operator's wasm_max_memory_mb)",
            )
        timeout = raw.get("timeout_seconds")
        if isinstance(timeout, int | float) and timeout > self.timeout_seconds:
            raise InvalidArgument.field(
                "limits.timeout_seconds",
                f"{timeout:g} s is above this server's maximum of {self.timeout_seconds:g} s per guest "
                "(the operator's wasm_max_timeout_seconds)",
            )


@dataclass(frozen=True, slots=True)
class Limits:
    """What one execution may use. Every field has a safe default."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_bytes: int = 64 * MIB
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    log_bytes: int = DEFAULT_LOG_BYTES

    @classmethod
    def from_config(cls, config: JSONObject, maxima: Maxima | None = None) -> Limits:
        """The limits a config asks for; defaults are lowered to the maxima, never raised."""
        maxima = maxima or Maxima()
        raw: dict[str, Any] = dict(config.get("limits") or {})
        default_mb = min(128 if config.get("language") == "python" else 64, maxima.memory_mb)
        default_timeout = min(DEFAULT_TIMEOUT_SECONDS, maxima.timeout_seconds)
        return cls(
            timeout_seconds=float(raw.get("timeout_seconds", default_timeout)),
            memory_bytes=int(raw.get("memory_mb", default_mb)) * MIB,
            output_bytes=int(raw.get("output_bytes", DEFAULT_OUTPUT_BYTES)),
            log_bytes=int(raw.get("log_bytes", DEFAULT_LOG_BYTES)),
        )


@dataclass(frozen=True, slots=True)
class Program:
    """What a config asks to run: guest source in a language, or a WASI module."""

    language: str | None
    source: str
    module_digest: str | None

    @classmethod
    def from_config(cls, config: JSONObject) -> Program:
        module = config.get("module")
        if module is not None:
            match = DIGEST.match(str(module))
            if match is None:
                raise InvalidArgument.field("module", "expected a sha256 digest (64 hex digits)")
            return cls(language=None, source="", module_digest=match.group(1))
        language = config.get("language")
        source = config.get("source")
        if language not in ("javascript", "python") or not isinstance(source, str):
            raise InvalidArgument.field("language", "give language and source, or module")
        if "\x00" in source:
            # argv strings are C strings inside the guest: a NUL would silently cut the code
            raise InvalidArgument.field("source", "source must not contain NUL characters")
        return cls(language=str(language), source=source, module_digest=None)


__all__ = ["CONFIG_SCHEMA", "LIMITS_SCHEMA", "MAX_SOURCE_BYTES", "MIB", "Limits", "Maxima", "Program"]
