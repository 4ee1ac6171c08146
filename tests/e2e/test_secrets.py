"""Secrets end to end, on both stores: sealed at rest, named as ``{{ secrets.NAME }}``,
masked in what a handler echoes (stored output, error, the Execute and Watch streams and
the debug log), checked when an action is saved, and re-encrypted by a master-key rotation."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from neoactions.client import AsyncClient
from neoactions.domain.errors import InvalidArgument, NotFound
from neoactions.domain.model import ExecutionStatus, Tenant
from neoactions.server.secrets.crypto import key_id
from tests.e2e.conftest import ServerProcess, module_server, tenant_client

MASTER_KEY = os.urandom(32)
#: a value no log line, output or stored row may hold
TOKEN = f"tok_live_{uuid.uuid4().hex}"


class SecretsServer:
    def __init__(self, store: str, proc: ServerProcess, base: Path) -> None:
        self.store, self.proc, self.base = store, proc, base


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def secrets_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretsServer]:
    """One server per store, logging at debug level. The embedded store generates its master
    key in the data directory; PostgreSQL is given one."""
    base = tmp_path_factory.mktemp("secrets-e2e")
    env = {"NEOACTIONS_LOG_LEVEL": "debug", "NEOACTIONS_PYTHON_HANDLER_MODULES": "shop"}
    if request.param == "postgres":
        env["NEOACTIONS_MASTER_KEY"] = base64.b64encode(MASTER_KEY).decode()
    with module_server(request.param, base, env) as proc:
        yield SecretsServer(request.param, proc, base)


@pytest.fixture
async def client(secrets_server: SecretsServer) -> AsyncIterator[AsyncClient]:
    async with tenant_client(secrets_server.proc.target) as c:
        yield c


def echo_action(name: str, function: str = "echo") -> dict[str, object]:
    return {
        "name": name,
        "trigger": {"event_types": ["secrets.probe"]},
        "handler": {
            "type": "python",
            "config": {"function": f"shop.secret_echo:{function}", "token": "{{ secrets.api_token }}"},
        },
        "execution_mode": "sync",
        "timeout_seconds": 10,
        "retry_policy": {"max_retries": 0},
    }


async def stored_ciphertexts(server: SecretsServer, tenant: str) -> dict[str, bytes]:
    """The secrets table of ``tenant`` read straight from the database file or row."""
    if server.store == "sqlite":
        import sqlite3

        path = Path(server.proc.store_url) / f"{Tenant(tenant).schema}.db"
        raw = path.read_bytes()
        assert TOKEN.encode() not in raw  # the whole file, not only the row
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            assert TOKEN.encode() not in wal.read_bytes()
        with sqlite3.connect(path) as conn:
            return {name: bytes(c) for name, c in conn.execute("SELECT name, ciphertext FROM secrets")}
    conn = await asyncpg.connect(server.proc.store_url)
    try:
        rows = await conn.fetch(f'SELECT name, ciphertext FROM "{Tenant(tenant).schema}".secrets')
    finally:
        await conn.close()
    return {r["name"]: bytes(r["ciphertext"]) for r in rows}


async def test_a_secret_is_sealed_at_rest_and_never_returned(
    client: AsyncClient, secrets_server: SecretsServer
) -> None:
    info = await client.set_secret("api_token", TOKEN)
    assert (info.name, info.version) == ("api_token", 1)
    again = await client.set_secret("api_token", TOKEN)
    assert again.version == 2 and again.created_at == info.created_at
    rows = await stored_ciphertexts(secrets_server, client.tenant)
    assert set(rows) == {"api_token"}
    assert TOKEN.encode() not in rows["api_token"] and rows["api_token"].startswith(b"nas1")
    listed = [s async for s in client.iter_secrets()]
    assert [(s.name, s.version) for s in listed] == [("api_token", 2)]
    assert TOKEN not in repr(listed)

    action = await client.create_action(echo_action("echo"))
    fetched = await client.get_action("echo")
    assert fetched.handler.config["token"] == "{{ secrets.api_token }}" == action.handler.config["token"]

    await client.delete_secret("api_token")
    assert [s async for s in client.iter_secrets()] == []
    with pytest.raises(NotFound):
        await client.delete_secret("api_token")


async def test_an_echoed_secret_is_masked_in_output_error_streams_and_log(
    client: AsyncClient, secrets_server: SecretsServer
) -> None:
    await client.set_secret("api_token", TOKEN)
    await client.create_action(echo_action("echo"))
    await client.create_action(echo_action("leak", "leak"))

    correlation = uuid.uuid4().hex
    watched: list[object] = []

    async def watch() -> None:
        async for update in client.watch_executions(correlation_id=correlation):
            watched.append(update)
            if update.kind.is_final:
                return

    watcher = asyncio.create_task(watch())
    streamed = [u async for u in client.execute("echo", {"n": 1}, correlation_id=correlation)]
    async with asyncio.timeout(20):
        await watcher
    final = streamed[-1]
    assert final.kind.is_final and final.status is ExecutionStatus.SUCCEEDED
    expected = {"token": "***", "header": "Bearer ***", "***": "as a key", "nested": [{"t": "***"}]}
    assert final.output == expected
    messages = [u.message for u in streamed if u.message]
    assert "calling with token ***" in messages and "half way with ***" in messages
    stored = await client.get_execution(final.execution_id)
    assert stored.output == expected and stored.attempts[-1].output == expected
    assert TOKEN not in repr(streamed) and TOKEN not in repr(watched) and TOKEN not in repr(stored)
    assert any(getattr(u, "output", None) == expected for u in watched)

    failed = await client.run("leak", {"n": 2})
    assert failed.status is ExecutionStatus.FAILED and failed.error is not None
    assert "the server refused token ***" in failed.error.message
    assert TOKEN not in repr(failed)

    # a published event runs the same way (the publisher renders and runs the attempt itself)
    published = await client.publish("secrets.probe", {"n": 3}, wait=True)
    assert {x.status for x in published.executions} == {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED}
    assert TOKEN not in repr(published)

    log = secrets_server.proc.log_path.read_text()
    assert '"DEBUG"' in log  # the server logs at debug level (its SQL too, on the embedded store)
    assert TOKEN not in log


async def test_saving_refuses_unknown_secrets_and_literal_credentials(client: AsyncClient) -> None:
    http = {
        "name": "notify",
        "trigger": {"event_types": ["orders.paid"]},
        "handler": {
            "type": "http",
            "config": {
                "url": "https://hooks.example.com/x",
                "headers": {"Authorization": "Bearer {{ secrets.missing_token }}"},
            },
        },
    }
    with pytest.raises(InvalidArgument) as refused:
        await client.create_action(http)
    assert refused.value.reason == "UNKNOWN_SECRET"
    assert refused.value.violations[0].field == "handler.config.headers.Authorization"
    assert "missing_token" in refused.value.message

    bearer = {"url": "https://hooks.example.com/x", "auth": {"type": "bearer", "token": "sk_live_123"}}
    literal = dict(http, handler={"type": "http", "config": bearer})
    with pytest.raises(InvalidArgument) as refused:
        await client.create_action(literal)
    assert refused.value.reason == "SECRET_REFERENCE_REQUIRED"
    assert refused.value.violations[0].field == "handler.config.auth.token"

    # inline handlers of Execute are checked the same way
    with pytest.raises(InvalidArgument) as refused:
        signed = {"url": "https://hooks.example.com/x", "webhook": {"secrets": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La"}}
        await client.run({"type": "http", "config": signed})
    assert refused.value.violations[0].field == "inline.handler.config.webhook.secrets"

    await client.set_secret("missing_token", "now-it-exists")
    created = await client.create_action(http)
    assert created.handler.config["headers"] == {"Authorization": "Bearer {{ secrets.missing_token }}"}
    # apply goes through the same check (and update too)
    with pytest.raises(InvalidArgument) as refused:
        await client.apply([dict(http, handler={"type": "http", "config": {"url": "https://hooks.example.com/x",
                            "headers": {"Authorization": "Bearer {{ secrets.gone }}"}}})])  # fmt: skip
    assert refused.value.violations[0].field == "actions[0].handler.config.headers.Authorization"


async def test_rotation_re_encrypts_and_secrets_still_resolve(
    client: AsyncClient, secrets_server: SecretsServer
) -> None:
    await client.set_secret("api_token", TOKEN)
    await client.create_action(echo_action("echo"))
    before = (await stored_ciphertexts(secrets_server, client.tenant))["api_token"]
    new = os.urandom(32)
    async with AsyncClient(secrets_server.proc.target, timeout=30) as admin:
        rotation = await admin.rotate_master_key(new)
        assert rotation.key_id == key_id(new) and rotation.resealed >= 1 and rotation.remaining == 0
        after = (await stored_ciphertexts(secrets_server, client.tenant))["api_token"]
        assert after != before and after[4:12] == key_id(new).encode() and before[4:12] != after[4:12]
        ran = await client.run("echo", {"n": 1})
        assert ran.status is ExecutionStatus.SUCCEEDED and ran.output["token"] == "***"
        # a second rotation with nothing new to do re-encrypts nothing
        assert (await admin.rotate_master_key()).resealed == 0
        if secrets_server.store == "sqlite":
            # the generated key file now holds the new key: a restart opens the secrets
            key_file = Path(secrets_server.proc.store_url) / "master.key"
            assert base64.b64decode(key_file.read_text()) == new and rotation.persisted
        else:
            assert not rotation.persisted  # the key came from NEOACTIONS_MASTER_KEY
    if secrets_server.store == "sqlite":
        secrets_server.proc.restart()  # reads the rotated key file
        async with AsyncClient(secrets_server.proc.target, tenant=client.tenant, timeout=30) as again:
            ran = await again.run("echo", {"n": 2})
            assert ran.status is ExecutionStatus.SUCCEEDED and ran.output["token"] == "***"


def test_cli_sets_from_stdin_or_a_file_lists_and_deletes(secrets_server: SecretsServer, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from neoactions.client.cli._app import app

    target = secrets_server.proc.target
    tenant = f"t_{uuid.uuid4().hex[:12]}"
    runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})

    def cli(*args: str, input: str | None = None) -> object:
        result = runner.invoke(app, ["--server", target, "--tenant", tenant, *args], input=input)
        assert result.exit_code == 0, result.output
        return result

    cli("tenants", "create", tenant)
    set_doc = json.loads(cli("secrets", "set", "from_stdin", "--json", input=TOKEN + "\n").stdout)  # type: ignore[attr-defined]
    assert (set_doc["name"], set_doc["version"], set_doc["tenant"]) == ("from_stdin", 1, tenant)
    value_file = tmp_path / "value.txt"
    value_file.write_text("from a file\n")
    shown = cli("secrets", "set", "from_file", "--from-file", str(value_file)).stdout  # type: ignore[attr-defined]
    assert "{{ secrets.from_file }}" in shown
    listed = json.loads(cli("secrets", "list", "--json").stdout)  # type: ignore[attr-defined]
    assert [s["name"] for s in listed] == ["from_file", "from_stdin"]
    assert TOKEN not in json.dumps(listed) and "from a file" not in json.dumps(listed)
    assert json.loads(cli("secrets", "delete", "from_file", "--json").stdout)["deleted"] == "from_file"  # type: ignore[attr-defined]
    assert "from_stdin" in cli("secrets", "list").stdout  # type: ignore[attr-defined]

    # the value is stored as given, less the one newline echo adds: an action renders it exactly
    asyncio.run(_run_echo(target, tenant))

    empty = runner.invoke(app, ["--server", target, "--tenant", tenant, "secrets", "set", "x"], input="")
    assert empty.exit_code == 2 and "empty" in empty.output


async def _run_echo(target: str, tenant: str) -> None:
    async with AsyncClient(target, tenant=tenant, timeout=30) as c:
        action = echo_action("echo")
        action["handler"]["config"]["token"] = "{{ secrets.from_stdin }}"  # type: ignore[index]
        await c.create_action(action)
        ran = await c.run("echo", {})
        assert ran.output == {"token": "***", "header": "Bearer ***", "***": "as a key", "nested": [{"t": "***"}]}


async def test_only_admins_manage_secrets_and_only_the_admin_tenant_rotates(
    client: AsyncClient, secrets_server: SecretsServer
) -> None:
    from neoactions.domain.errors import PermissionDenied

    target, tenant = secrets_server.proc.target, client.tenant
    keys = {role: (await client.create_api_key(f"{role}-key", role))[1] for role in ("admin", "writer", "reader")}
    async with AsyncClient(target, tenant=tenant, api_key=keys["admin"], timeout=30) as admin:
        await admin.set_secret("by_tenant_admin", "v1")
        assert [s.name async for s in admin.iter_secrets()] == ["by_tenant_admin"]
        with pytest.raises((PermissionDenied, NotFound)):
            await admin.rotate_master_key()
        with pytest.raises((PermissionDenied, NotFound)):  # another tenant's secrets do not exist for it
            await admin.list_secrets(tenant="admin")
    for role in ("writer", "reader"):
        async with AsyncClient(target, tenant=tenant, api_key=keys[role], timeout=30) as other:
            with pytest.raises(PermissionDenied):
                await other.set_secret("x", "v")
            with pytest.raises(PermissionDenied):
                await other.list_secrets()
