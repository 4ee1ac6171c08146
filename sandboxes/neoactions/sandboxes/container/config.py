"""The ``container`` handler config: its JSON Schema and the parsed :class:`ContainerSpec`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSONObject
from neoactions.sandboxes.container.user import ContainerUser, UserRefused, parse_user

#: the user a container runs as unless the action says otherwise (nobody:nogroup)
DEFAULT_USER = "65534:65534"

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "anyOf": [{"required": ["image"]}, {"required": ["archive"]}],
    "properties": {
        "image": {
            "type": "string",
            "minLength": 1,
            "description": "a local image tag or id (nothing is pulled); with `archive`, the tag the archive provides",
        },
        "archive": {
            "type": "object",
            "required": ["path", "sha256"],
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "a `docker save` tarball"},
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
            "additionalProperties": False,
            "description": "load the image from this archive once its sha256 digest matches",
        },
        "mode": {
            "enum": ["oneshot", "sidecar"],
            "default": "oneshot",
            "description": "oneshot: one container per attempt, JSON on stdin -> JSON on stdout; "
            "sidecar: warm containers serving the Handler gRPC protocol",
        },
        "command": {"type": "array", "items": {"type": "string"}, "description": "overrides CMD"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "config": {
            "type": "object",
            "description": "the handler's own config (stdin `config` / config_json)",
        },
        "network": {
            "type": "boolean",
            "default": False,
            "description": "give the container the default bridge network (else none)",
        },
        "user": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$",
            "default": DEFAULT_USER,
            "description": "uid or uid:gid, decimal (a bare uid gets the group of the same number); "
            "never uid 0 or gid 0; names are refused",
        },
        "memory_mb": {"type": "integer", "minimum": 6, "maximum": 65536, "default": 256},
        "cpus": {"type": "number", "exclusiveMinimum": 0, "maximum": 64, "default": 1.0},
        "pids": {"type": "integer", "minimum": 4, "maximum": 32768, "default": 128},
        "tmpfs_mb": {
            "type": "integer",
            "minimum": 0,
            "maximum": 4096,
            "default": 16,
            "description": "size of the writable /tmp (the root filesystem is read-only)",
        },
        "max_output_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864, "default": 1048576},
        "pool": {
            "type": "object",
            "properties": {
                "max_size": {"type": "integer", "minimum": 1, "maximum": 256, "default": 2},
                "idle_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 300},
            },
            "additionalProperties": False,
            "description": "sidecar mode: the warm pool of containers for this image and settings",
        },
    },
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class Limits:
    memory_mb: int = 256
    cpus: float = 1.0
    pids: int = 128
    tmpfs_mb: int = 16


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One action's container settings, parsed from a validated config."""

    image: str
    mode: Literal["oneshot", "sidecar"] = "oneshot"
    archive_path: str = ""
    archive_sha256: str = ""
    command: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    network: bool = False
    user: str = DEFAULT_USER
    limits: Limits = field(default_factory=Limits)
    max_output_bytes: int = 1 << 20
    pool_max_size: int = 2
    pool_idle_seconds: float = 300.0
    handler_config: JSONObject = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_config(cls, config: JSONObject) -> ContainerSpec:
        """Raises ``InvalidArgument`` (field ``user``) for a user that is not numeric and non-root."""
        archive: dict[str, Any] = dict(config.get("archive") or {})
        pool: dict[str, Any] = dict(config.get("pool") or {})
        command = config.get("command")
        return cls(
            image=str(config.get("image", "")),
            mode="sidecar" if config.get("mode") == "sidecar" else "oneshot",
            archive_path=str(archive.get("path", "")),
            archive_sha256=str(archive.get("sha256", "")).lower(),
            command=tuple(str(c) for c in command) if command is not None else None,
            env=tuple(sorted((str(k), str(v)) for k, v in dict(config.get("env") or {}).items())),
            network=bool(config.get("network", False)),
            user=str(_user(config)),
            limits=Limits(
                memory_mb=int(config.get("memory_mb", 256)),
                cpus=float(config.get("cpus", 1.0)),
                pids=int(config.get("pids", 128)),
                tmpfs_mb=int(config.get("tmpfs_mb", 16)),
            ),
            max_output_bytes=int(config.get("max_output_bytes", 1 << 20)),
            pool_max_size=int(pool.get("max_size", 2)),
            pool_idle_seconds=float(pool.get("idle_seconds", 300.0)),
            handler_config=dict(config.get("config") or {}),
        )

    def pool_key(self, image: str) -> tuple[Any, ...]:
        """Containers are interchangeable when these match."""
        return (image, self.command, self.env, self.network, self.user, self.limits)

    def numeric_user(self) -> tuple[int, int]:
        """(uid, gid): ``user`` is always ``uid:gid`` in numbers once parsed."""
        user = parse_user(self.user)
        return user.uid, user.gid


def _user(config: JSONObject) -> ContainerUser:
    try:
        return parse_user(str(config.get("user") or DEFAULT_USER))
    except UserRefused as exc:
        raise InvalidArgument.field("user", str(exc), reason="INVALID_HANDLER_CONFIG") from None


def validate(config: JSONObject) -> None:
    """Checks beyond the schema: a numeric user, never uid 0 nor gid 0."""
    _user(config)


__all__ = ["CONFIG_SCHEMA", "DEFAULT_USER", "ContainerSpec", "Limits", "validate"]
