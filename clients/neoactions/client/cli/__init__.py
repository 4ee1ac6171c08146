"""The ``neoactions`` command line: ``serve``, ``apply``, ``publish``, ``execute``,
``actions``, ``executions`` and ``tenants``. Human tables by default, ``--json`` for scripts.

Exit codes: 0 success, 1 an error from the server (``error: REASON: message``) or an
execution that did not succeed, 2 a usage error.
"""

from __future__ import annotations

from neoactions.client.cli._app import app


def main() -> None:
    """The ``neoactions`` console script."""
    app()


__all__ = ["app", "main"]
