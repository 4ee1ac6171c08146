"""What every command shares: the global options, the client, JSON arguments, errors."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.globals import get_current_context  # typer's own click keeps the context stack

from neoactions.client._async import AsyncClient
from neoactions.client._config import DEFAULT_TARGET, DEFAULT_TIMEOUT
from neoactions.client._sync import Client
from neoactions.client.cli import _render
from neoactions.domain.errors import InvalidArgument, NeoActionsError, Unavailable
from neoactions.domain.model import ADMIN_TENANT

#: ``--json`` (also accepted before the command, as a global option)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output: one JSON document (JSON lines for streams).")]
#: ``--tenant`` (also accepted before the command, as a global option)
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", "-t", help="Tenant for this command (overrides the global one).")
]


@dataclass(slots=True)
class CliState:
    """The global options, merged with a command's own ``--tenant`` / ``--json``."""

    server: str = DEFAULT_TARGET
    tenant: str = ADMIN_TENANT
    json: bool = False
    #: ``--timeout``: seconds a call may take (``None``: 60 s, and no limit for ``execute``)
    timeout: float | None = None
    #: ``--tls-ca`` / ``--tls-cert`` / ``--tls-key``: PEM files; any of them makes the client speak TLS
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    #: ``--api-key`` (or the login profile's); "" lets the client look further (see client/_auth.py)
    api_key: str = ""

    @classmethod
    def of(cls, ctx: typer.Context, *, tenant: str | None = None, json: bool = False) -> CliState:
        base = ctx.find_object(CliState) or cls(
            server=os.environ.get("NEOACTIONS_SERVER", DEFAULT_TARGET),
            tenant=os.environ.get("NEOACTIONS_TENANT", ADMIN_TENANT),
        )
        state = cls(base.server, tenant or base.tenant, base.json or json, base.timeout)
        state.tls_ca = base.tls_ca or os.environ.get("NEOACTIONS_TLS_CA", "")
        state.tls_cert = base.tls_cert or os.environ.get("NEOACTIONS_TLS_CERT", "")
        state.tls_key = base.tls_key or os.environ.get("NEOACTIONS_TLS_KEY", "")
        state.api_key = base.api_key
        return state

    def tls(self) -> dict[str, str]:
        """The client's TLS arguments that are set (none: plaintext)."""
        given = {"tls_ca": self.tls_ca, "tls_cert": self.tls_cert, "tls_key": self.tls_key}
        return {name: path for name, path in given.items() if path}

    def connection(self) -> dict[str, Any]:
        """The client's connection arguments: TLS and the API key (only those that are set)."""
        return {**self.tls(), **({"api_key": self.api_key} if self.api_key else {})}

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A connected client; a failed call prints ``error: REASON: message`` and exits 1."""
        try:
            with Client(
                self.server, self.tenant, timeout=self.timeout or DEFAULT_TIMEOUT, **self.connection()
            ) as client:
                yield client
        except NeoActionsError as exc:
            _render.error(with_hint(exc, self.server, self.timeout or DEFAULT_TIMEOUT), as_json=self.json)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    @contextlib.asynccontextmanager
    async def async_client(self) -> AsyncIterator[AsyncClient]:
        """:meth:`client` for commands that wait on several things at once."""
        try:
            async with AsyncClient(
                self.server, self.tenant, timeout=self.timeout or DEFAULT_TIMEOUT, **self.connection()
            ) as client:
                yield client
        except NeoActionsError as exc:
            _render.error(with_hint(exc, self.server, self.timeout or DEFAULT_TIMEOUT), as_json=self.json)
            raise typer.Exit(1) from None


#: what gRPC says when nothing answers at the address (no neoactions error details)
_UNREACHABLE = ("failed to connect", "dns resolution failed", "connection refused", "socket closed", "connect failed")
#: what gRPC says when the TCP connection opened but TLS did not agree (a plaintext client of a TLS
#: server, or the reverse; an untrusted certificate; a missing client certificate)
_TLS_MISMATCH = ("socket closed", "handshake failed", "ssl")


def with_hint(exc: NeoActionsError, server: str, timeout: float) -> NeoActionsError:
    """A connection-level failure said in the user's words, with what to check; other errors as they are."""
    message = exc.message.lower()
    if exc.reason == "UNAVAILABLE" and not exc.metadata and any(m in message for m in _TLS_MISMATCH):
        return Unavailable(
            f"the server at {server} closed the connection before answering: if it serves TLS, pass --tls-ca"
            " (and --tls-cert/--tls-key when it requires client certificates); if it does not, drop --tls-*",
            reason="UNAVAILABLE",
        )
    if exc.reason == "UNAVAILABLE" and not exc.metadata and any(m in message for m in _UNREACHABLE):
        return Unavailable(
            f"cannot reach the server at {server}: is `neoactions serve` running at {server}?"
            " (choose another with --server or NEOACTIONS_SERVER)",
            reason="UNAVAILABLE",
        )
    if exc.reason == "UNIMPLEMENTED":
        return NeoActionsError(
            f"the process at {server} does not serve this API (a `serve --role worker` process serves only"
            " health checks): point --server at an `api` or `all` process",
            reason="UNIMPLEMENTED",
        )
    if exc.reason == "DEADLINE_EXCEEDED":
        return Unavailable(
            f"no answer from {server} within {timeout:g}s: raise --timeout, or check that a neoactions server"
            " answers there",
            reason="DEADLINE_EXCEEDED",
        )
    hint = _NOT_FOUND_HINTS.get(exc.reason)
    if hint and "hint:" not in exc.message:
        return type(exc)(
            f"{exc.message} (hint: {hint})", reason=exc.reason, violations=exc.violations, metadata=exc.metadata
        )
    return exc


#: where to look when the thing named does not exist (in the tenant of the call)
_NOT_FOUND_HINTS = {
    "TENANT_NOT_FOUND": "`neoactions tenants list` shows them; `neoactions tenants create NAME` makes one",
    "ACTION_NOT_FOUND": "`neoactions actions list` shows the tenant's actions; --tenant picks the tenant",
    "API_KEY_NOT_FOUND": "`neoactions keys list` shows the ids; --tenant picks the tenant",
    "EVENT_NOT_FOUND": "`neoactions events list` shows the ids; --tenant picks the tenant",
    "EXECUTION_NOT_FOUND": "`neoactions executions list` shows the ids; --tenant picks the tenant",
    "SECRET_NOT_FOUND": "`neoactions secrets list` shows the tenant's secrets; --tenant picks the tenant",
    "REPLAY_NOT_FOUND": "`neoactions events replay ... --detach --json` prints a replay's id",
    "PLUGIN_NOT_FOUND": "`neoactions plugins list` shows the installed plugins, `plugins search` a registry's",
}


def json_argument(text: str | None, option: str, *, want_object: bool = True) -> Any:
    """A JSON command-line value (``@path`` reads a file); bad JSON is a usage error (exit 2)."""
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {text[1:]}: {exc.strerror}", param_hint=option) from None
    try:
        value = json.loads(text)
    except RecursionError:
        # as the server says it: one line, INVALID_ARGUMENT naming the option
        ctx = get_current_context(silent=True)
        shared = ctx.find_object(CliState) if ctx is not None else None
        as_json = bool(ctx is not None and ctx.params.get("json_")) or (shared is not None and shared.json)
        too_deep = InvalidArgument.field(option, "nests too deeply (at most 64 levels of arrays and objects)")
        _render.error(too_deep, as_json=as_json)
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if want_object and not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


__all__ = ["CliState", "JsonOpt", "TenantOpt", "json_argument", "with_hint"]
