"""The one `neoactions` namespace spans proto/, server/, sandboxes/, plugins/ and clients/:
in the editable install and in the wheel."""

from __future__ import annotations

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

PARTS = {
    "proto": "neoactions.v1",
    "server": "neoactions.server",
    "sandboxes": "neoactions.sandboxes",
    "plugins": "neoactions.plugins",
    "clients": "neoactions.client",
}


def test_every_part_imports_from_its_folder() -> None:
    for folder, module in PARTS.items():
        imported = importlib.import_module(module)
        assert Path(imported.__path__[0]).resolve().is_relative_to(ROOT / folder), module
    importlib.import_module("neoactions.handler.v1.handler_pb2")
    # the domain the server and the clients share lives beside the server
    domain = importlib.import_module("neoactions.domain")
    assert Path(domain.__path__[0]).resolve().is_relative_to(ROOT / "server"), "neoactions.domain"
    for folder in PARTS:
        assert not (ROOT / folder / "neoactions" / "__init__.py").exists(), (
            f"{folder}/neoactions/__init__.py hides the rest"
        )


@pytest.mark.slow
def test_the_wheel_carries_every_part(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    [wheel] = tmp_path.glob("neoactions-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "neoactions/v1/events_pb2.py",
        "neoactions/handler/v1/handler.proto",
        "neoactions/server/app.py",
        "neoactions/domain/model.py",
        "neoactions/server/persistence/migrations/postgres/0001_init.sql",
        "neoactions/sandboxes/python/runner.py",
        "neoactions/plugins/sdk/server.py",
        "neoactions/client/cli/__init__.py",
    ):
        assert expected in names, expected
    assert "neoactions/__init__.py" not in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
