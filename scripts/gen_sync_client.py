"""Write the blocking client (``clients/neoactions/client/_sync.py``) from the asyncio one.

The blocking :class:`~neoactions.client.Client` is the :class:`~neoactions.client.AsyncClient`
with ``async`` and ``await`` taken out (``unasync``'s token rewrite) and grpc's synchronous
channel in place of ``grpc.aio``'s, so the two can never drift apart. ``make client``
writes it; ``--check`` fails when the committed file differs (``make check`` runs it, and
a unit test does too).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tokenize_rt
import unasync

CLIENT = Path(__file__).resolve().parent.parent / "clients" / "neoactions" / "client"
SOURCE = CLIENT / "_async.py"
TARGET = CLIENT / "_sync.py"

#: names the token rewrite renames beyond unasync's own table
NAMES = {"AsyncClient": "Client", "open_async_channel": "open_sync_channel"}

#: what a token rewrite cannot say: the texts that describe the asyncio client
TEXTS = (
    (
        '"""``AsyncClient``: the typed asyncio client (grpc.aio). The blocking ``Client`` in ``_sync.py`` is\n'
        'generated from this file (``make client``)."""',
        '"""``Client``: the typed blocking client, on grpc\'s synchronous channel (no event loop).\n\n'
        "Generated from ``_async.py`` by ``make client`` (``scripts/gen_sync_client.py``): edit that\n"
        'file, not this one."""',
    ),
    (
        "The neoactions API over asyncio, returning domain objects and raising typed errors.\n",
        "The neoactions API, blocking, returning domain objects and raising typed errors.\n\n"
        "    The same methods as :class:`~neoactions.client.AsyncClient`; streams are plain iterators.\n",
    ),
    (
        "from collections.abc import Iterator, Awaitable, Callable, Iterable, Mapping, Sequence",
        "from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence",
    ),
    ("Callable[[str], Awaitable[Page[T]]]", "Callable[[str], Page[T]]"),
    ("for item in page.items:\n            yield item", "yield from page.items"),
    ("``async with AsyncClient(", "``with Client("),
    ("grpc.aio.", "grpc."),
    ("  # noqa: ASYNC109 - the gRPC deadline of the stream", ""),
)


def render() -> str:
    """The blocking client's source, from the asyncio client's."""
    rule = unasync.Rule(fromdir="/", todir="/", additional_replacements=NAMES)
    tokens = tokenize_rt.src_to_tokens(SOURCE.read_text())
    text = tokenize_rt.tokens_to_src(list(rule._unasync_tokens(tokens)))
    for old, new in TEXTS:
        if old not in text:
            raise SystemExit(f"gen_sync_client: {old!r} is no longer in {SOURCE.name}; update TEXTS")
        text = text.replace(old, new)
    # lines the rewrite shortened (``async def`` → ``def``) are laid out as ruff lays them out
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=CLIENT.parent.parent.parent,
    )
    return formatted.stdout


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"drift: {TARGET} differs from what {SOURCE.name} generates (run make client)")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
