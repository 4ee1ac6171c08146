"""TestAction / `neoactions test-event`: why an event matches an action or not."""

from __future__ import annotations

from neoactions.client import AsyncClient
from tests.e2e.conftest import ServerProcess

ACTIONS = {
    "actions": [
        {
            "name": "big-eu-order",
            "trigger": {
                "event_types": ["orders.created"],
                "conditions": [
                    {"field": "data.amount", "operator": "gt", "value": 100},
                    {"any": [{"field": "data.region", "operator": "equals", "value": "eu"}, {"cel": "data.vip"}]},
                ],
            },
            "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
            "priority": "high",
        },
        {
            "name": "any-user-event",
            "trigger": {"event_types": ["users.*"]},
            "handler": {"type": "python", "config": {"function": "shop.handlers:Greeter"}},
        },
    ]
}


async def test_explains_every_action_and_can_execute(server: ServerProcess) -> None:
    async with AsyncClient(server.target) as client:
        await client.apply(ACTIONS)
        results = await client.test_event("orders.created", {"amount": 50, "region": "us", "vip": False})
        by_name = {r.action: r for r in results}
        assert [r.action for r in results] == ["big-eu-order", "any-user-event"]  # priority order

        big = by_name["big-eu-order"]
        assert not big.matched and big.reason == "conditions_not_met"
        assert big.patterns == [{"pattern": "orders.created", "matched": True}]
        amount, either = big.conditions
        assert amount["location"] == "trigger.conditions[0]"
        assert amount["matched"] is False and amount["actual"] == 50 and amount["expected"] == 100
        assert either["kind"] == "any" and [c["matched"] for c in either["children"]] == [False, False]
        assert either["children"][0]["actual"] == "us"

        other = by_name["any-user-event"]
        assert not other.matched and other.reason == "event_type_not_matched"

        [ran] = await client.test_event(
            "orders.created", {"amount": 500, "region": "eu", "order_id": 9}, action="big-eu-order", execute=True
        )
        assert ran.matched and ran.execution_status == "succeeded" and ran.output["amount"] == 500
        stored = await client.get_execution(ran.execution_id)
        assert stored.action_name == "big-eu-order"
        # nothing was published
        assert len((await client.list_events()).items) == 0
