"""What every command shares: the global options, the client, JSON arguments, errors."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from neoactions.client._config import DEFAULT_TARGET
from neoactions.client._sync import Client
from neoactions.client.cli import _render
from neoactions.server.errors import NeoActionsError
from neoactions.server.model import ADMIN_TENANT

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
    timeout: float = 60.0

    @classmethod
    def of(cls, ctx: typer.Context, *, tenant: str | None = None, json: bool = False) -> CliState:
        base = ctx.find_object(CliState) or cls(
            server=os.environ.get("NEOACTIONS_SERVER", DEFAULT_TARGET),
            tenant=os.environ.get("NEOACTIONS_TENANT", ADMIN_TENANT),
        )
        return cls(base.server, tenant or base.tenant, base.json or json, base.timeout)

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A connected client; a failed call prints ``error: REASON: message`` and exits 1."""
        try:
            with Client(self.server, self.tenant, timeout=self.timeout) as client:
                yield client
        except NeoActionsError as exc:
            _render.error(exc, as_json=self.json)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


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
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if want_object and not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


__all__ = ["CliState", "JsonOpt", "TenantOpt", "json_argument"]
