"""The ``wasm`` handler type through the real server: stored and inline actions over gRPC."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from neoactions.client import authorized_channel
from neoactions.v1 import actions_pb2, actions_pb2_grpc, executions_pb2, executions_pb2_grpc
from tests.e2e.conftest import ServerProcess

ADMIN = "tenants/admin"
K = executions_pb2.ExecutionUpdate

# "{{ ... }}" inside the code must reach the guest as written: source is not templated
JS_SOURCE = """export default function ({ data, config }) {
  console.log("order " + data.order_id);
  return { order: data.order_id, total: data.items.reduce((s, i) => s + i.qty * i.price, 0),
           label: config.label, literal: "{{ not a template }}" };
}
"""

PY_SOURCE = """
def main(input):
    print("scoring", input["data"]["user"])
    return {"score": len(input["data"]["user"]) * 10}
"""


def wasm_action(name: str, config: dict[str, Any]) -> actions_pb2.CreateActionRequest:
    body = {"trigger": {"event_types": ["orders.created"]}, "handler": {"type": "wasm", "config": config}}
    return actions_pb2.CreateActionRequest(
        parent=ADMIN, action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


def inline(config: dict[str, Any], timeout: float = 60.0) -> executions_pb2.InlineAction:
    action = executions_pb2.InlineAction(handler=actions_pb2.Handler(type="wasm"), timeout_seconds=timeout)
    action.handler.config.update(config)
    return action


async def test_wasm_actions_run_through_execute(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        executions = executions_pb2_grpc.ExecutionServiceStub(ch)
        await actions.CreateAction(
            wasm_action(
                "js-total", {"language": "javascript", "source": JS_SOURCE, "label": "order-{{ data.order_id }}"}
            )
        )
        data = {"order_id": 7, "items": [{"qty": 2, "price": 4.5}]}
        request = executions_pb2.ExecuteRequest(parent=ADMIN, action="js-total", input_json=json.dumps(data))
        updates = [u async for u in executions.Execute(request)]
        assert updates[-1].kind == K.KIND_SUCCEEDED, updates[-1]
        output = json.loads(updates[-1].output_json)
        assert output["order"] == 7 and output["total"] == 9 and output["label"] == "order-7"
        assert output["literal"] == "{{ not a template }}"
        assert any(u.kind == K.KIND_LOG and u.message == "order 7" for u in updates)

        py = inline({"language": "python", "source": PY_SOURCE})
        request = executions_pb2.ExecuteRequest(parent=ADMIN, inline=py, input_json=json.dumps({"user": "ada"}))
        updates = [u async for u in executions.Execute(request)]
        assert updates[-1].kind == K.KIND_SUCCEEDED, updates[-1]
        assert json.loads(updates[-1].output_json) == {"score": 30}
        assert any(u.kind == K.KIND_LOG and u.message == "scoring ada" for u in updates)


async def test_wasm_failures_are_classified(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        executions = executions_pb2_grpc.ExecutionServiceStub(ch)
        loop = inline({"language": "javascript", "source": "function main() { for (;;) {} }",
                       "limits": {"timeout_seconds": 0.5}})  # fmt: skip
        updates = [u async for u in executions.Execute(executions_pb2.ExecuteRequest(parent=ADMIN, inline=loop))]
        assert updates[-1].kind == K.KIND_TIMED_OUT, updates[-1]

        boom = inline({"language": "javascript", "source": "function main() {\n  throw new TypeError('nope');\n}"})
        updates = [u async for u in executions.Execute(executions_pb2.ExecuteRequest(parent=ADMIN, inline=boom))]
        assert updates[-1].kind == K.KIND_FAILED, updates[-1]
        assert updates[-1].error.type == "TypeError" and updates[-1].error.message == "nope"
        assert "<action>:2" in updates[-1].error.stack and not updates[-1].error.retryable
