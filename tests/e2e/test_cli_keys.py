"""``neoactions keys``, ``login`` and ``tenants delete`` against a real server (embedded store)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from neoactions.client.cli import app
from tests.e2e.conftest import ServerProcess


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cli-keys")
    proc = ServerProcess(str(base / "data"), base / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _runner(**env: str | None) -> CliRunner:
    return CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200", **env})


def test_keys_create_prints_the_key_once_and_it_works(keyed_server: ServerProcess, tmp_path: Path) -> None:
    tenant = f"t_{uuid.uuid4().hex[:10]}"
    run = _runner().invoke
    assert run(app, ["--server", keyed_server.target, "tenants", "create", tenant]).exit_code == 0
    args = ["keys", "create", "ci-bot", "--role", "reader", "--tenant", tenant, "--expires", "30d", "--json"]
    created = run(app, ["--server", keyed_server.target, *args])
    assert created.exit_code == 0, created.output
    doc = json.loads(created.stdout)
    token, key = doc["key"], doc["api_key"]
    assert token.startswith("nak_") and key["role"] == "reader" and key["tenant"] == tenant and key["expires_at"]

    listed = run(app, ["--server", keyed_server.target, "keys", "list", "--tenant", tenant, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [k["id"] for k in json.loads(listed.stdout)] == [key["id"]]
    assert token not in listed.stdout

    as_reader = _runner(NEOACTIONS_API_KEY=None).invoke(
        app, ["--server", keyed_server.target, "--api-key", token, "--tenant", tenant, "actions", "list", "--json"]
    )
    assert as_reader.exit_code == 0, as_reader.output
    refused = _runner(NEOACTIONS_API_KEY=None).invoke(
        app, ["--server", keyed_server.target, "--api-key", token, "--tenant", tenant, "publish", "a.b", "--json"]
    )
    assert refused.exit_code == 1
    assert "PERMISSION_DENIED" in refused.output or "ROLE_NOT_ALLOWED" in refused.output

    revoked = run(app, ["--server", keyed_server.target, "keys", "revoke", key["id"], "--tenant", tenant])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout


def test_a_wrong_role_is_a_one_line_usage_error(keyed_server: ServerProcess) -> None:
    result = _runner().invoke(app, ["--server", keyed_server.target, "keys", "create", "x", "--role", "root"])
    assert result.exit_code == 2 and "admin, writer, reader, publisher" in result.output


def test_login_writes_a_profile_the_cli_then_uses(
    keyed_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    key_file = tmp_path / "ops.key"
    key_file.write_text(os.environ["NEOACTIONS_API_KEY"] + "\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "NEOACTIONS_API_KEY": None}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    logged = _runner(**env).invoke(
        app, ["login", "--server", keyed_server.target, "--api-key-file", str(key_file), "--json"]
    )
    assert logged.exit_code == 0, logged.output
    config = tmp_path / "config" / "neoactions" / "config.yaml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(config.read_text())["profiles"]["default"]["server"] == keyed_server.target
    # no --server, no --api-key: the profile provides both
    listed = _runner(**env).invoke(app, ["tenants", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "admin" in {t["slug"] for t in json.loads(listed.stdout)}


def test_without_any_key_the_error_says_how_to_get_one(keyed_server: ServerProcess, tmp_path: Path) -> None:
    result = _runner(NEOACTIONS_API_KEY=None, XDG_CONFIG_HOME=str(tmp_path)).invoke(
        app, ["--server", keyed_server.target.replace("127.0.0.1", "localhost"), "actions", "list"]
    )
    assert result.exit_code == 1
    assert "UNAUTHENTICATED" in result.output or "API_KEY_MISSING" in result.output
    assert "neoactions login" in result.output


def test_tenants_delete(keyed_server: ServerProcess) -> None:
    tenant = f"t_{uuid.uuid4().hex[:10]}"
    run = _runner().invoke
    assert run(app, ["--server", keyed_server.target, "tenants", "create", tenant]).exit_code == 0
    deleted = run(app, ["--server", keyed_server.target, "tenants", "delete", tenant, "--json"])
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {"deleted": tenant}
    again = run(app, ["--server", keyed_server.target, "tenants", "delete", tenant, "--yes"])
    assert again.exit_code == 1 and "not found" in again.output
