"""Plugins through a real server, on the embedded store and on PostgreSQL: search the example
registry, install, run an action using the plugin, update mid-run, uninstall; every way an
install must be refused; a second process sharing PostgreSQL follows an install."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from neoactions.client import AsyncClient
from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from neoactions.domain.model import ExecutionStatus
from neoactions.plugins import authoring, registry, signing
from neoactions.plugins.manifest import MANIFEST_FILE
from tests.e2e.conftest import ServerProcess, module_server

ROOT = Path(__file__).resolve().parents[2]

# the slow plugin busy-waits so an update can land while an execution of it runs
SLOW_JS = """
function main(input) {
  const until = Date.now() + (input.data.ms || 0);
  while (Date.now() < until) {}
  return { version: "%s", echo: input.data };
}
"""


def _example_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_registry_build", ROOT / "plugins/registry/build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plugin(work: Path, name: str, version: str, source: str, **changes: Any) -> Path:
    """A wasm plugin directory (built, not signed) made from the author's skeleton."""
    directory = work / f"{name}-{version}"
    if directory.exists():
        shutil.rmtree(directory)
    skeleton = authoring.init(name, "wasm", work / "skeletons" / uuid.uuid4().hex[:6])
    shutil.copytree(skeleton, directory)
    (directory / authoring.JS_SOURCE).write_text(source)
    import yaml

    doc = yaml.safe_load((directory / MANIFEST_FILE).read_text())
    doc["version"] = version
    doc["artifact"]["file"] = f"{name}.wasm"
    doc.update(changes)
    (directory / MANIFEST_FILE).write_text(yaml.safe_dump(doc, sort_keys=False))
    authoring.build(directory)
    return directory


def _publish(directory: Path, key: Path, to: Path) -> None:
    authoring.sign_plugin(directory, key)
    registry.publish(directory, to)


#: a registry nothing listens at (port 9, discard): connection refused
DOWN_REGISTRY = "http://127.0.0.1:9/"


class Registries:
    def __init__(self, base: Path) -> None:
        self.base = base
        # the container example needs Docker: test_plugins_container.py installs it
        self.good, trusted = _example_builder().build(base / "registry", kinds=("wasm", "python-sidecar"))
        self.key = self.good / "keys" / signing.PRIVATE_FILE
        self.trusted = trusted
        self.bad = base / "bad"
        self.work = base / "work"
        self.work.mkdir()
        self._bad_plugins()

    def publish_slow(self, version: str) -> None:
        _publish(_plugin(self.work, "slow-echo", version, SLOW_JS % version), self.key, self.good)

    def _bad_plugins(self) -> None:
        echo = "function main(input) { return input.data; }"
        # tampered: one byte of the published artifact changed after signing
        _publish(_plugin(self.work, "tampered", "1.0.0", echo), self.key, self.bad)
        artifact = self.bad / "tampered/1.0.0/tampered.wasm"
        data = bytearray(artifact.read_bytes())
        data[-1] ^= 0x01
        artifact.write_bytes(bytes(data))
        # signed by a key the server does not trust
        signing.keygen(self.work / "stranger")
        _publish(_plugin(self.work, "stranger", "1.0.0", echo), self.work / "stranger" / signing.PRIVATE_FILE, self.bad)
        # needs a secret the operator must grant
        needy = _plugin(self.work, "needy", "1.0.0", echo, capabilities={"secrets": ["SLACK_TOKEN"]})
        _publish(needy, self.key, self.bad)
        # a manifest that breaks the schema, signed as it is
        broken = _plugin(self.work, "broken", "1.0.0", echo)
        _publish(broken, self.key, self.bad)
        manifest_path = self.bad / "broken/1.0.0" / registry.MANIFEST_JSON
        doc = json.loads(manifest_path.read_text())
        doc["handler_types"][0]["kind"] = "telepathy"
        manifest_path.write_text(json.dumps(signing.sign(doc, signing.load_private(self.key))))

    def env(self) -> dict[str, str]:
        return {
            # the first registry is down: every search and install here goes on without it
            "NEOACTIONS_PLUGIN_REGISTRIES": f"{DOWN_REGISTRY},{self.good},{self.bad}",
            "NEOACTIONS_TRUSTED_PLUGIN_KEYS": str(self.trusted),
            # secrets on PostgreSQL need a master key (the embedded store makes its own)
            "NEOACTIONS_MASTER_KEY": base64.b64encode(b"plugins-e2e-master-key-32-bytes!").decode(),
        }


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Registries:
    return Registries(tmp_path_factory.mktemp("plugin-registries"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def plugin_server(
    request: pytest.FixtureRequest, registries: Registries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with module_server(request.param, tmp_path_factory.mktemp(f"plugins-{request.param}"), registries.env()) as s:
        yield s


def _action(name: str, handler: dict[str, Any], event_type: str) -> dict[str, Any]:
    return {"name": name, "trigger": {"event_types": [event_type]}, "handler": handler, "execution_mode": "sync"}


async def _uninstall_all(client: AsyncClient) -> None:
    for plugin in await client.list_plugins(installed_only=True):
        await client.uninstall_plugin(plugin["name"], force=True)


async def test_search_install_apply_publish_and_uninstall(plugin_server: ServerProcess) -> None:
    async with AsyncClient(plugin_server.target, timeout=60) as admin:
        await _uninstall_all(admin)
        found = {p["name"]: p for p in await admin.search_plugins("text")}
        assert found["text-tools"]["latest"] == "1.0.0" and "text.template" in found["text-tools"]["handler_types"]
        assert found["text-tools"]["installed_version"] == ""

        installed = await admin.install_plugin("text-tools", "^1")
        assert installed["version"] == "1.0.0" and installed["signed_by"]
        assert {t["name"] for t in installed["handler_types"]} == {"text.template", "text.slugify"}
        listed = {p["name"]: p for p in await admin.list_plugins()}
        assert listed["text-tools"]["builtin"] is False
        assert listed["wasm"]["builtin"] is True and listed["wasm"]["kind"] == "built-in"
        assert listed["wasm"]["manifest"]["handler_types"][0]["config_schema"]["type"] == "object"
        assert (await admin.search_plugins("text-tools"))[0]["installed_version"] == "1.0.0"

        tenant = f"t_{uuid.uuid4().hex[:10]}"
        await admin.create_tenant(tenant)
        async with AsyncClient(plugin_server.target, tenant=tenant, timeout=60) as client:
            with pytest.raises(InvalidArgument) as bad:  # saving validates against that version's schema
                await client.create_action(
                    _action("greet", {"type": "text.template", "version": "^1", "config": {}}, "users.created")
                )
            assert "template" in bad.value.message
            with pytest.raises(InvalidArgument) as unsatisfied:
                await client.create_action(
                    _action("greet", {"type": "text.template", "version": "^2", "config": {"template": "x"}}, "a.b")
                )
            assert unsatisfied.value.reason == "UNKNOWN_HANDLER_VERSION"
            config = {"template": "Welcome ${user.name} (${user.email})"}
            await client.create_action(
                _action("greet", {"type": "text.template", "version": "^1", "config": config}, "users.created")
            )
            published = await client.publish("users.created", {"user": {"name": "Ada", "email": "ada@x.io"}}, wait=True)
            (execution,) = published.executions
            stored = await client.get_execution(execution.id)
            assert stored.status is ExecutionStatus.SUCCEEDED, stored
            assert stored.output == {"text": "Welcome Ada (ada@x.io)"}
            assert stored.handler_version == "1.0.0"

            with pytest.raises(FailedPrecondition) as in_use:
                await admin.uninstall_plugin("text-tools")
            assert in_use.value.reason == "PLUGIN_IN_USE" and f"{tenant}/greet" in in_use.value.message
            removed = await admin.uninstall_plugin("text-tools", force=True)
            assert removed == {"removed_versions": ["1.0.0"], "disabled_actions": [f"{tenant}/greet"]}
            assert (await client.get_action("greet")).enabled is False
        assert [p["name"] for p in await admin.list_plugins(installed_only=True)] == []
        # both are in the admin tenant's audit log, with what changed
        audit = (await admin.list_audit_entries(kind="plugin", target="text-tools")).items
        assert [e.kind for e in audit[:2]] == ["plugin.uninstall", "plugin.install"]
        assert audit[1].change["version"] == "1.0.0" and audit[0].change["disabled_actions"] == [f"{tenant}/greet"]


async def test_update_mid_run_keeps_in_flight_on_the_old_version(
    plugin_server: ServerProcess, registries: Registries
) -> None:
    if not (registries.good / "slow-echo").exists():
        registries.publish_slow("1.0.0")
    async with AsyncClient(plugin_server.target, timeout=60) as admin:
        await _uninstall_all(admin)
        await admin.install_plugin("slow-echo", "1.0.0")
        await admin.create_action(_action(f"slow-{uuid.uuid4().hex[:6]}", {"type": "slow_echo"}, "never.happens"))
        updates = admin.execute({"type": "slow_echo", "config": {}}, {"ms": 2500}, timeout_seconds=30)
        first_id = ""
        async for update in updates:
            first_id = update.execution_id
            if update.kind.value == "started":
                break
        if not (registries.good / "slow-echo/1.1.0").exists():
            registries.publish_slow("1.1.0")
        updated = await admin.update_plugin("slow-echo")
        assert updated["versions"] == ["1.0.0", "1.1.0"] and updated["version"] == "1.1.0"
        async for _ in updates:
            pass
        first = await admin.get_execution(first_id)
        assert first.status is ExecutionStatus.SUCCEEDED, first
        assert (first.handler_version, first.output["version"]) == ("1.0.0", "1.0.0")
        second = await admin.run({"type": "slow_echo", "config": {}}, {"ms": 0})
        assert (second.handler_version, second.output["version"]) == ("1.1.0", "1.1.0")
        with pytest.raises(FailedPrecondition) as up_to_date:
            await admin.update_plugin("slow-echo")
        assert up_to_date.value.reason == "PLUGIN_UP_TO_DATE"
        await _uninstall_all(admin)


@pytest.mark.parametrize(
    ("name", "version", "grants", "error", "reason"),
    [
        ("tampered", "", [], FailedPrecondition, "PLUGIN_DIGEST_MISMATCH"),
        ("stranger", "", [], FailedPrecondition, "PLUGIN_UNTRUSTED_KEY"),
        ("broken", "", [], InvalidArgument, "INVALID_PLUGIN_MANIFEST"),
        ("text-tools", "^7", [], FailedPrecondition, "PLUGIN_VERSION_UNSATISFIED"),
        ("needy", "", ["secret:OTHER"], FailedPrecondition, "PLUGIN_CAPABILITY_NOT_GRANTED"),
        ("no-such-plugin", "", [], NotFound, "PLUGIN_NOT_FOUND"),
    ],
)
async def test_refused_installs_leave_nothing_behind(
    plugin_server: ServerProcess, name: str, version: str, grants: list[str], error: type[Exception], reason: str
) -> None:
    async with AsyncClient(plugin_server.target, timeout=60) as admin:
        await _uninstall_all(admin)
        with pytest.raises(error) as refused:
            await admin.install_plugin(name, version, grants=grants)
        assert getattr(refused.value, "reason", "") == reason, refused.value
        if reason == "PLUGIN_CAPABILITY_NOT_GRANTED":
            assert "secret:SLACK_TOKEN" in str(refused.value)
        if reason == "INVALID_PLUGIN_MANIFEST":
            assert "manifest.handler_types[0].kind" in str(refused.value)
        assert await admin.list_plugins(installed_only=True) == []
        with pytest.raises(InvalidArgument) as unknown:
            await admin.run({"type": name.replace("-", "_"), "config": {}}, {})
        assert unknown.value.reason == "UNKNOWN_HANDLER_TYPE"


async def test_granted_capability_installs(plugin_server: ServerProcess) -> None:
    async with AsyncClient(plugin_server.target, timeout=60) as admin:
        await _uninstall_all(admin)
        needy = await admin.install_plugin("needy", grants=["secret:SLACK_TOKEN"])
        assert needy["granted_capabilities"] == ["secret:SLACK_TOKEN"]
        assert (await admin.get_plugin("needy"))["requested_capabilities"] == ["secret:SLACK_TOKEN"]
        # its config may render only the secrets granted to it
        await admin.set_secret("SLACK_TOKEN", "xoxb-granted")
        await admin.set_secret("OTHER", "not-for-plugins")
        handler = {"type": "needy", "config": {"token": "{{ secrets.OTHER }}"}}
        with pytest.raises(InvalidArgument) as refused:
            await admin.create_action(_action(f"needy-{uuid.uuid4().hex[:6]}", handler, "a.b"))
        assert refused.value.reason == "PLUGIN_SECRET_NOT_GRANTED"
        assert refused.value.violations[0].field.endswith("handler.config.token"), refused.value.violations
        handler["config"] = {"token": "{{ secrets.SLACK_TOKEN }}"}
        await admin.create_action(_action(f"needy-{uuid.uuid4().hex[:6]}", handler, "a.b"), validate_only=True)
        await _uninstall_all(admin)


@pytest.fixture
def two_processes(
    registries: Registries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on one fresh PostgreSQL database."""
    with module_server("postgres", tmp_path, registries.env()) as first:
        for key, value in registries.env().items():
            monkeypatch.setenv(key, value)
        second = ServerProcess(first.store_url, tmp_path / "second.log")
        second.start()
        try:
            yield first, second
        finally:
            second.stop()


async def test_a_second_process_sharing_postgres_follows_installs(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_processes
    async with AsyncClient(first.target, timeout=60) as a, AsyncClient(second.target, timeout=60) as b:
        await a.install_plugin("json-tools")
        # the change feed tells the second process; poll for it (normally milliseconds)
        for _ in range(200):
            if [p["name"] for p in await b.list_plugins(installed_only=True)] == ["json-tools"]:
                break
            await asyncio.sleep(0.05)
        config = {"pick": {"who": "user.name"}, "set": {"via": "b"}}
        ran = await b.run({"type": "json.transform", "config": config}, {"user": {"name": "Ada"}})
        assert ran.status is ExecutionStatus.SUCCEEDED and ran.output == {"who": "Ada", "via": "b"}
        await a.uninstall_plugin("json-tools")
        for _ in range(200):
            if await b.list_plugins(installed_only=True) == []:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(InvalidArgument):
            await b.run({"type": "json.transform", "config": config}, {})


@pytest.fixture
def fake_slack() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback stand-in for Slack's Web API recording what it was sent."""
    import http.server
    import threading

    seen: list[dict[str, Any]] = []

    class Slack(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
            answer = json.dumps({"ok": True, "channel": body["channel"], "ts": "1700000000.000100"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_a_python_wheel_plugin_runs_as_a_warm_sidecar(
    plugin_server: ServerProcess, fake_slack: tuple[str, list[dict[str, Any]]]
) -> None:
    base_url, seen = fake_slack
    async with AsyncClient(plugin_server.target, timeout=120) as admin:
        await _uninstall_all(admin)
        with pytest.raises(FailedPrecondition) as refused:
            await admin.install_plugin("slack-notify")
        assert "net:slack.com" in refused.value.message and "secret:SLACK_TOKEN" in refused.value.message
        installed = await admin.install_plugin("slack-notify", grants=["net:slack.com,secret:SLACK_TOKEN"])
        assert installed["kind"] == "python-sidecar"
        await admin.set_secret("SLACK_TOKEN", "xoxb-e2e-token")
        config = {
            "channel": "#signups",
            "text": "New user {{ data.name }}",
            "token": "{{ secrets.SLACK_TOKEN }}",
            "base_url": base_url,
        }
        name = f"notify-{uuid.uuid4().hex[:6]}"
        await admin.create_action(_action(name, {"type": "slack.post_message", "config": config}, "users.signed_up"))
        published = await admin.publish("users.signed_up", {"name": "Ada"}, wait=True)
        stored = await admin.get_execution(published.executions[0].id)
        assert stored.status is ExecutionStatus.SUCCEEDED, stored
        assert stored.output == {"ok": True, "channel": "#signups", "ts": "1700000000.000100"}
        (request,) = seen
        assert request["path"] == "/api/chat.postMessage" and request["auth"] == "Bearer xoxb-e2e-token"
        assert request["body"] == {"channel": "#signups", "text": "New user Ada"}
        removed = await admin.uninstall_plugin("slack-notify", force=True)
        assert removed["disabled_actions"]


def test_the_operator_cli_speaks_json_and_one_line_errors(plugin_server: ServerProcess) -> None:
    from typer.testing import CliRunner

    from neoactions.client.cli import app

    runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})

    def cli(*args: str) -> Any:
        return runner.invoke(app, ["--server", plugin_server.target, "plugins", *args])

    for plugin in json.loads(cli("list", "--installed", "--json").stdout):  # what an earlier test left
        cli("uninstall", plugin["name"], "--force")
    searched = cli("search", "json", "--json")
    found = json.loads(searched.stdout)
    assert [p["name"] for p in found] == ["json-tools"]
    # the registry that is down is named, on stderr, without failing the search
    warning = json.loads(searched.stderr)["warning"]
    assert [u["registry"] for u in warning["unreachable_registries"]] == [DOWN_REGISTRY]
    as_text = cli("search", "json")
    assert as_text.exit_code == 0 and "json-tools" in as_text.stdout
    (line,) = as_text.stderr.splitlines()
    assert line.startswith(f"warning: registries not searched (unreachable): {DOWN_REGISTRY}")
    installed = json.loads(cli("install", "json-tools@^1", "--json").stdout)
    assert installed["version"] == "1.0.0"
    try:
        shown = json.loads(cli("show", "json-tools", "--json").stdout)
        assert shown["handler_types"][0]["name"] == "json.transform" and shown["handler_types"][0]["examples"]
        listed = cli("list")
        assert listed.exit_code == 0 and "json-tools" in listed.stdout and "built-in" in listed.stdout
        again = cli("install", "json-tools")
        assert again.exit_code == 1
        assert again.stderr.startswith("error: PLUGIN_ALREADY_INSTALLED: plugin json-tools is already installed")
        missing = cli("install", "no-such-plugin", "--json")
        assert missing.exit_code == 1 and json.loads(missing.stderr)["error"]["reason"] == "PLUGIN_NOT_FOUND"
        assert DOWN_REGISTRY in json.loads(missing.stderr)["error"]["message"]
    finally:
        removed = json.loads(cli("uninstall", "json-tools", "--force", "--json").stdout)
    assert removed["removed_versions"] == ["1.0.0"]
