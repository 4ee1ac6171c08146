"""A plugin registry served over HTTP (a loopback static file server): search, resolve and
fetch read it as they read a folder."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from neoactions.domain.errors import FailedPrecondition, NotFound, Unavailable
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


def test_search_and_install_go_on_without_an_unreachable_registry(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    down = registry.Registry("http://127.0.0.1:9/")
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / registry.INDEX_FILE).write_text("not json")
    regs = [down, registry.Registry(str(garbled)), registry.Registry(url)]
    unreachable: list[registry.Unreachable] = []
    (entry,) = registry.search(regs, "echo", unreachable)
    assert entry.name == "echo"
    assert [u.registry for u in unreachable] == ["http://127.0.0.1:9/", str(garbled)]
    assert "127.0.0.1:9" in unreachable[0].message and "not JSON" in unreachable[1].message
    # without a list to collect them, the first unreadable registry fails the search as before
    with pytest.raises(Unavailable):
        registry.search(regs, "echo")
    # install: the registry that has the plugin answers; the ones down are skipped
    found, version = registry.resolve(regs, "echo", "^0.1")
    assert (found.location, version) == (url, "0.1.0")
    # nobody has it: the error names the registries that were not searched
    with pytest.raises(NotFound) as missing:
        registry.resolve(regs, "absent")
    assert "127.0.0.1:9" in missing.value.message and str(garbled) in missing.value.message
    with pytest.raises(FailedPrecondition) as unsatisfied:
        registry.resolve(regs, "echo", "^2")
    assert "127.0.0.1:9" in unsatisfied.value.message
    # every registry down: unavailable, naming them
    with pytest.raises(Unavailable) as nothing:
        registry.resolve(regs[:2], "echo")
    assert nothing.value.reason == "PLUGIN_REGISTRY_UNREACHABLE" and str(garbled) in nothing.value.message
