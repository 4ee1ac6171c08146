"""End to end through the real server: event → matched action → signed webhook delivered
and verified by the receiver → execution stored with the receiver's response.

The server process allow-lists loopback for the http runner (``http_allow_networks``),
as an operator would for a receiver on the same machine.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from loopback_http import Received, Reply, serve_http
from standardwebhooks import Webhook, WebhookVerificationError

from neoactions.client import authorized_channel
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
)
from tests.conftest import FIXTURES, ROOT
from tests.e2e.conftest import LISTENING, ServerProcess

ADMIN = "tenants/admin"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEXT_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
#: the master key sealing the test's secrets (PostgreSQL needs one; the embedded store makes its own)
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()

# ``python -m neoactions.server`` reads runner settings from no environment variable yet,
# so this launcher passes the allow-list the way a config file would
_LAUNCH = (
    "import json, os\n"
    "from neoactions.server.app import run\n"
    "from neoactions.server.settings import Settings\n"
    "run(Settings.load(runner_settings=json.loads(os.environ['E2E_RUNNER_SETTINGS'])))\n"
)


class LoopbackAllowedServer(ServerProcess):
    """The e2e server process, with loopback allow-listed for http targets."""

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        env.update(
            NEOACTIONS_PORT="0",
            NEOACTIONS_SHUTDOWN_GRACE_SECONDS="2",
            PYTHONPATH=os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")]),
            E2E_RUNNER_SETTINGS=json.dumps({"http_allow_networks": ["127.0.0.0/8", "::1/128"]}),
            NEOACTIONS_PYTHON_HANDLER_MODULES="shop",
            NEOACTIONS_MASTER_KEY=MASTER_KEY,
        )
        if self.store_url.startswith("postgresql://"):
            env["NEOACTIONS_DATABASE_URL"] = self.store_url
        else:
            env["NEOACTIONS_DATA_DIR"] = self.store_url
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH],
            stdout=subprocess.PIPE,
            stderr=self.log_path.open("a"),
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                return
        self.proc.kill()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-3000:]}")


@pytest.fixture
def webhook_server(store_url: str, tmp_path: Path) -> Iterator[LoopbackAllowedServer]:
    proc = LoopbackAllowedServer(store_url, tmp_path / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def set_secrets(ch: Any, **values: str) -> None:
    """Store the signing secrets the actions name (a literal ``whsec_`` is refused on save)."""
    stub = secrets_pb2_grpc.SecretServiceStub(ch)
    for name, value in values.items():
        await stub.SetSecret(secrets_pb2.SetSecretRequest(parent=ADMIN, secret_id=name, value=value))


def webhook_action(name: str, url: str, secret_names: list[str]) -> actions_pb2.CreateActionRequest:
    secrets = [f"{{{{ secrets.{n} }}}}" for n in secret_names]
    body: dict[str, Any] = {
        "trigger": {"event_types": ["orders.paid"]},
        "handler": {
            "type": "http",
            "config": {
                "url": url + "/hooks/{{ data.order_id }}",
                "webhook": {"secrets": secrets},
                "body": {"type": "{{ event.type }}", "order": "{{ data.order_id }}", "amount": "{{ data.amount }}"},
            },
        },
        "execution_mode": "EXECUTION_MODE_SYNC",
    }
    return actions_pb2.CreateActionRequest(
        parent=ADMIN, action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


async def test_event_to_verified_webhook_to_stored_execution(webhook_server: LoopbackAllowedServer) -> None:
    verified: list[Any] = []

    def receiver(req: Received) -> Reply:
        try:
            payload = Webhook(SECRET).verify(req.body, req.headers)
        except WebhookVerificationError as exc:
            return Reply(401, str(exc).encode())
        verified.append((req.path, req.headers["webhook-id"], payload))
        return Reply(202, b'{"accepted":true,"ticket":"T-1"}', {"content-type": "application/json"})

    with serve_http(receiver) as receiver_server:
        async with authorized_channel(webhook_server.target) as ch:
            actions = actions_pb2_grpc.ActionServiceStub(ch)
            events = events_pb2_grpc.EventServiceStub(ch)
            executions = executions_pb2_grpc.ExecutionServiceStub(ch)
            # signed with the current and the next secret: a rotation in progress
            await set_secrets(ch, partner_whsec=SECRET, partner_whsec_next=NEXT_SECRET)
            await actions.CreateAction(
                webhook_action("notify-paid", receiver_server.url, ["partner_whsec_next", "partner_whsec"])
            )
            reply = await events.PublishEvent(
                events_pb2.PublishEventRequest(
                    parent=ADMIN,
                    wait=True,
                    event=events_pb2.Event(type="orders.paid", data_json=json.dumps({"order_id": 42, "amount": 99.5})),
                )
            )
            assert len(reply.executions) == 1
            done = reply.executions[0]
            assert done.status == executions_pb2.EXECUTION_STATUS_SUCCEEDED, done.error
            stored = await executions.GetExecution(executions_pb2.GetExecutionRequest(name=done.name))

    assert verified == [("/hooks/42", stored.idempotency_key, {"type": "orders.paid", "order": 42, "amount": 99.5})]
    assert stored.status == executions_pb2.EXECUTION_STATUS_SUCCEEDED
    output = json.loads(stored.output_json)
    assert output["status"] == 202
    assert output["body"] == {"accepted": True, "ticket": "T-1"}
    assert receiver_server.requests[0].headers["idempotency-key"] == stored.idempotency_key


async def test_refused_target_fails_the_execution_not_the_call(webhook_server: LoopbackAllowedServer) -> None:
    async with authorized_channel(webhook_server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        await set_secrets(ch, partner_whsec=SECRET)
        await actions.CreateAction(webhook_action("to-metadata", "http://169.254.169.254", ["partner_whsec"]))
        reply = await events.PublishEvent(
            events_pb2.PublishEventRequest(
                parent=ADMIN,
                wait=True,
                event=events_pb2.Event(type="orders.paid", data_json=json.dumps({"order_id": 1, "amount": 1})),
            )
        )
    [execution] = reply.executions
    assert execution.status == executions_pb2.EXECUTION_STATUS_FAILED
    assert execution.error.type == "ssrf_refused"
    assert execution.error.message == "refused: 169.254.169.254 is a cloud metadata address"


async def test_an_api_token_echoed_by_the_target_is_masked(webhook_server: LoopbackAllowedServer) -> None:
    """The target gets the real token; what the execution stores of its reply does not."""
    token = f"tok_{os.urandom(12).hex()}"

    def echo(req: Received) -> Reply:
        seen = {"authorization": req.headers.get("authorization", ""), "note": f"token {token} accepted"}
        return Reply(200, json.dumps(seen).encode(), {"content-type": "application/json", "x-echo": token})

    with serve_http(echo) as receiver_server:
        async with authorized_channel(webhook_server.target) as ch:
            await set_secrets(ch, partner_token=token)
            config = {
                "url": receiver_server.url + "/api",
                "auth": {"type": "bearer", "token": "{{ secrets.partner_token }}"},
                "response_headers": ["x-echo"],
            }
            body = {"trigger": {"event_types": ["orders.paid"]}, "handler": {"type": "http", "config": config}}
            actions = actions_pb2_grpc.ActionServiceStub(ch)
            request = actions_pb2.CreateActionRequest(
                parent=ADMIN, action_id="call-api", action=json_format.ParseDict(body, actions_pb2.Action())
            )
            await actions.CreateAction(request)
            stored = await actions.GetAction(actions_pb2.GetActionRequest(name=f"{ADMIN}/actions/call-api"))
            assert token not in str(stored)
            executions = executions_pb2_grpc.ExecutionServiceStub(ch)
            updates = [
                u
                async for u in executions.Execute(
                    executions_pb2.ExecuteRequest(parent=ADMIN, action="call-api", input_json="{}")
                )
            ]
    assert receiver_server.requests[0].headers["authorization"] == f"Bearer {token}"
    final = updates[-1]
    output = json.loads(final.output_json)
    assert output["body"] == {"authorization": "Bearer ***", "note": "token *** accepted"}
    assert output["headers"]["x-echo"] == "***"
    assert all(token not in str(u) for u in updates)
    assert token not in webhook_server.log_path.read_text()
