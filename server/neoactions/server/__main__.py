"""``python -m neoactions.server``: serve with settings from ``NEOACTIONS_*`` environment variables.

The CLI's ``neoactions serve`` is the usual way; this entry needs nothing but the
server package (tests and process supervisors use it).
"""

from __future__ import annotations

from neoactions.server.app import run
from neoactions.server.settings import Settings

if __name__ == "__main__":
    run(Settings.load())
