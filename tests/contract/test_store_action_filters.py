"""``list_actions`` with an ``ActionFilter``: every store answers alike, page after page."""

from __future__ import annotations

import dataclasses

from store_backends import ContractStore
from test_store_contract import action

from neoactions.domain.model import HandlerSpec
from neoactions.server.store import ActionFilter


async def _all(store: ContractStore, flt: ActionFilter, page_size: int) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = await store.list_actions("admin", page_size=page_size, page_token=token, filter=flt)
        assert len(page.items) <= page_size
        names += [a.name for a in page.items]
        token = page.next_page_token
        if not token:
            return names


async def test_list_actions_filters_by_enabled_type_tag_and_text(store: ContractStore) -> None:
    http = HandlerSpec("http", {"url": "https://example.com/hook"})
    for i in range(12):
        tags = ["billing"] if i % 2 == 0 else ["ops"]
        declared = action(f"act_{i:02d}", tags=tags, description="Refund Notice" if i in (4, 7) else "")
        if i % 3 == 0:
            declared = dataclasses.replace(declared, handler=http)
        await store.create_action(declared)
    for i in (0, 6):
        await store.set_action_enabled("admin", f"act_{i:02d}", False)

    for page_size in (1, 2, 50):
        assert await _all(store, ActionFilter(), page_size) == [f"act_{i:02d}" for i in range(12)]
        assert await _all(store, ActionFilter(handler_type="http"), page_size) == [
            "act_00",
            "act_03",
            "act_06",
            "act_09",
        ]
        assert await _all(store, ActionFilter(enabled=False), page_size) == ["act_00", "act_06"]
        assert await _all(store, ActionFilter(enabled=True, handler_type="http"), page_size) == ["act_03", "act_09"]
        assert await _all(store, ActionFilter(tag="billing", handler_type="http"), page_size) == ["act_00", "act_06"]
        assert await _all(store, ActionFilter(search="refund"), page_size) == ["act_04", "act_07"]
        assert await _all(store, ActionFilter(search="ACT_1"), page_size) == ["act_10", "act_11"]
        assert await _all(store, ActionFilter(tag="nobody"), page_size) == []
