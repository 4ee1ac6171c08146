"""``python -m neoactions.server``: serve with settings from ``NEOACTIONS_*`` environment variables.

The CLI's ``neoactions serve`` is the usual way; this entry needs nothing but the
server package (tests and process supervisors use it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from importlib.metadata import PackageNotFoundError, version

from neoactions.server.settings import Settings


def _version() -> str:
    try:
        return version("neoactions")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    names = ", ".join(f"NEOACTIONS_{f.name.upper()}" for f in fields(Settings))
    return argparse.ArgumentParser(
        prog="python -m neoactions.server",
        description="Serve the neoactions gRPC API until SIGINT or SIGTERM. Settings come from the"
        " environment only; `neoactions serve --help` takes them as flags and from a config file.",
        epilog=f"Settings (see docs/configuration.md): {names}.",
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line (``--help``, ``--version``), then serve."""
    parser = _parser()
    parser.add_argument("--version", action="version", version=f"neoactions {_version()}")
    parser.parse_args(argv)
    try:
        settings = Settings.load()
    except (ValueError, TypeError) as exc:
        print(f"error: {exc} (hint: check the NEOACTIONS_* environment variables)", file=sys.stderr)
        raise SystemExit(2) from None
    from neoactions.server.app import run

    run(settings)


if __name__ == "__main__":
    main()
