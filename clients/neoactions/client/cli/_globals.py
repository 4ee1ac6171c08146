"""Global options accepted anywhere on the command line.

``neoactions executions list --server HOST:PORT`` means the same as
``neoactions --server HOST:PORT executions list``: before click parses the command line,
a global option found after the subcommand is moved in front of it — unless that
subcommand declares an option of the same name itself (``--tenant`` and ``--json`` on
most commands), which then takes it as usual. Option values and everything after
``--`` are left alone.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from typer._click.exceptions import ClickException
from typer.core import TyperGroup
from typer.exceptions import Exit

#: the root's options that may come anywhere, and whether each takes a value
GLOBAL_OPTIONS: dict[str, bool] = {
    "--server": True,
    "-s": True,
    "--tenant": True,
    "-t": True,
    "--json": False,
    "--timeout": True,
    "--tls-ca": True,
    "--tls-cert": True,
    "--tls-key": True,
    "--api-key": True,
    "--profile": True,
}


# Commands are looked at by duck typing: typer may bring click or a copy of its own.


def _options(command: Any) -> dict[str, bool]:
    """Every option name of ``command`` and whether it takes a value."""
    names: dict[str, bool] = {"--help": False, "-h": False}
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option":
            takes_value = not (param.is_flag or param.count)
            for name in (*param.opts, *param.secondary_opts):
                names[name] = takes_value
    return names


def hoist_global_options(root: Any, args: list[str]) -> list[str]:
    """``args`` with the global options that follow a subcommand moved before it."""
    hoisted: list[str] = []
    kept: list[str] = []
    command: Any = root
    options = _options(root)
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            kept.extend(args[i - 1 :])
            break
        if token.startswith("-") and token != "-":
            name, has_inline_value, _ = token.partition("=")
            own = options.get(name)
            if own is not None or command is root or name not in GLOBAL_OPTIONS:
                kept.append(token)
                if own and not has_inline_value and i < len(args):
                    kept.append(args[i])  # the option's value, whatever it looks like
                    i += 1
                continue
            hoisted.append(token)
            if GLOBAL_OPTIONS[name] and not has_inline_value and i < len(args):
                hoisted.append(args[i])
                i += 1
            continue
        kept.append(token)
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            sub = subcommands.get(token)
            if sub is not None:
                command, options = sub, _options(sub)
    return hoisted + kept


class GlobalOptionsAnywhere(TyperGroup):
    """The root group: global options may follow the subcommand; a usage error is one line."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with one_line_usage_errors():
            result: list[str] = super().parse_args(ctx, hoist_global_options(self, args))
        return result

    def invoke(self, ctx: Any) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """A command line click refuses: ``error: USAGE: message (hint: ...)`` on stderr, exit 2."""
    try:
        yield
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # ``neoactions`` alone: the help, as click shows it
            raise
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "neoactions"
        line = f"error: USAGE: {exc.format_message()} (hint: `{command} -h` lists what it takes)"
        print(" ".join(line.split()), file=sys.stderr)
        raise Exit(exc.exit_code) from None


__all__ = ["GLOBAL_OPTIONS", "GlobalOptionsAnywhere", "hoist_global_options"]
