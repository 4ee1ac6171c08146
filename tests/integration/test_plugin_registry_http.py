"""A plugin registry served over HTTP (a loopback static file server): search, resolve and
fetch read it as they read a folder."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from neoactions.domain.errors import Unavailable
from neoactions.plugins import authoring, registry, signing


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "registry"
    plugin = authoring.init("echo", "wasm", tmp_path)
    authoring.build(plugin)
    private, _ = signing.keygen(tmp_path / "keys")
    authoring.sign_plugin(plugin, private)
    registry.publish(plugin, folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_registry_reads_like_a_folder(served: tuple[str, Path]) -> None:
    url, folder = served
    for location in (url, url + "index.json"):
        remote = registry.Registry(location)
        assert remote.remote
        (entry,) = registry.search([remote], "echo")
        assert (entry.name, entry.latest) == ("echo", "0.1.0")
        fetched = remote.fetch("echo", "0.1.0")
        assert fetched.artifact == (folder / "echo/0.1.0/echo.wasm").read_bytes()
        assert fetched.document["signature"]["algorithm"] == "ed25519"


def test_an_unreachable_registry_says_so() -> None:
    with pytest.raises(Unavailable) as down:
        registry.Registry("http://127.0.0.1:9/").index()
    assert "127.0.0.1:9" in down.value.message
