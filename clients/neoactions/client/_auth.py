"""The API key a client sends, and where it finds one.

Every call carries ``authorization: Bearer <key>``. The key comes from, in order: the
``api_key`` argument, ``NEOACTIONS_API_KEY``, the profile for that server in the user's
config file (``neoactions login`` writes it), and — for a server on this machine — the first
admin key an embedded server wrote to its data directory (``$NEOACTIONS_DATA_DIR`` or
``.neoactions/`` in the working directory), so a newcomer's first commands need no key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import yaml

from neoactions.client._config import CHANNEL_OPTIONS
from neoactions.domain.keys import read_token_file

#: the config file ``neoactions login`` writes (under ``$XDG_CONFIG_HOME`` when set)
CONFIG_NAME = "neoactions/config.yaml"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / CONFIG_NAME


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The user's config (``{}`` when there is none or it is not a mapping)."""
    try:
        loaded = yaml.safe_load((path or config_path()).read_text())
    except (FileNotFoundError, NotADirectoryError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def profile(name: str | None = None) -> dict[str, Any]:
    """A profile of the config (``name``, else ``$NEOACTIONS_PROFILE``, else the current one)."""
    config = read_config()
    profiles = config.get("profiles")
    if not isinstance(profiles, dict):
        return {}
    chosen = name or os.environ.get("NEOACTIONS_PROFILE") or config.get("current") or "default"
    found = profiles.get(chosen)
    return found if isinstance(found, dict) else {}


def is_local(target: str) -> bool:
    host = target.rsplit(":", 1)[0] if ":" in target else target
    return host in _LOCAL_HOSTS or host.startswith("unix:")


def local_key_files(data_dir: str | Path | None = None) -> list[Path]:
    """Where an embedded server on this machine may have written its first admin key."""
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("NEOACTIONS_DATA_DIR"):
        dirs.append(Path(os.environ["NEOACTIONS_DATA_DIR"]))
    dirs.append(Path(".neoactions"))
    return [d / "admin.key" for d in dirs]


def resolve_api_key(api_key: str | None, target: str, data_dir: str | Path | None = None) -> str | None:
    """The key to send to ``target`` (``None``: none found; the server will say how to get one)."""
    if api_key:
        return api_key
    from_env = os.environ.get("NEOACTIONS_API_KEY")
    if from_env:
        return from_env.strip()
    chosen = profile()
    if chosen.get("api_key") and (not chosen.get("server") or chosen.get("server") == target):
        return str(chosen["api_key"])
    if is_local(target):
        for path in local_key_files(data_dir):
            try:
                key = read_token_file(path)
            except OSError:
                continue
            if key:
                return key
    return None


class _Metadata:
    """Adds fixed metadata (the bearer token) to every call of a channel."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = tuple(pairs)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in self._pairs:
            metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _UnaryUnary(_Metadata, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_Metadata, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_Metadata, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_Metadata, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def auth_interceptors(api_key: str | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors sending ``api_key`` with every call (none without a key)."""
    if not api_key:
        return []
    pairs = [("authorization", f"Bearer {api_key}")]
    return [_UnaryUnary(pairs), _UnaryStream(pairs), _StreamUnary(pairs), _StreamStream(pairs)]


class _Fields(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _SyncDetails(_Fields, grpc.ClientCallDetails):  # type: ignore[misc]
    """The details of a blocking call, with the key added to its metadata."""


_SYNC_INTERCEPTORS: tuple[type, ...] = (
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
)


class _SyncMetadata(*_SYNC_INTERCEPTORS):  # type: ignore[misc]
    """:class:`_Metadata` for grpc's blocking channel."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = tuple(pairs)

    def _details(self, d: Any) -> Any:
        metadata = [*(d.metadata or ()), *self._pairs]
        return _SyncDetails(
            d.method,
            d.timeout,
            metadata,
            d.credentials,
            getattr(d, "wait_for_ready", None),
            getattr(d, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


def open_async_channel(
    target: str, credentials: grpc.ChannelCredentials | None, api_key: str | None
) -> grpc.aio.Channel:
    """The asyncio client's channel: TLS with ``credentials`` (plaintext without), sending ``api_key``."""
    interceptors = auth_interceptors(api_key)
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)


def open_sync_channel(target: str, credentials: grpc.ChannelCredentials | None, api_key: str | None) -> grpc.Channel:
    """:func:`open_async_channel` for the blocking client."""
    if credentials is not None:
        channel = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    if not api_key:
        return channel
    return grpc.intercept_channel(channel, _SyncMetadata([("authorization", f"Bearer {api_key}")]))


def authorized_channel(
    target: str, api_key: str | None = None, *, options: Sequence[tuple[str, Any]] | None = None
) -> grpc.aio.Channel:
    """A plaintext channel whose every call carries the API key (found as :func:`resolve_api_key`
    does), for code that uses the generated stubs directly."""
    interceptors = auth_interceptors(resolve_api_key(api_key, target))
    return grpc.aio.insecure_channel(target, options=list(options or ()), interceptors=interceptors)


__all__ = [
    "auth_interceptors",
    "authorized_channel",
    "config_path",
    "is_local",
    "local_key_files",
    "open_async_channel",
    "open_sync_channel",
    "profile",
    "read_config",
    "resolve_api_key",
]
