"""Actions: validated on save, stored as versions, kept live in the matcher."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from neoactions.domain.errors import InvalidArgument, NotFound, ResourceExhausted, Violations
from neoactions.domain.ids import new_id
from neoactions.domain.model import Action, Condition, ConditionGroup, utcnow
from neoactions.server.changes import ActionChangeFeed, LocalChangeFeed
from neoactions.server.matching import CompiledTrigger, Matcher
from neoactions.server.retry import BACKOFFS
from neoactions.server.runners import HandlerRegistry
from neoactions.server.store import ActionFilter, ActionStore, Page
from neoactions.server.templating import ConfigRenderer

ACTION_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}\Z")
MAX_TAGS = 32


def condition_count(conditions: list[Condition]) -> int:
    """Conditions of a trigger, every group and each of its members counted (recursively)."""
    return sum(1 + (condition_count(c.conditions) if isinstance(c, ConditionGroup) else 0) for c in conditions)


class ActionCatalog:
    """Create, update, enable, disable and delete actions; the matcher follows every change."""

    def __init__(
        self,
        store: ActionStore,
        matcher: Matcher,
        registry: HandlerRegistry,
        renderer: ConfigRenderer,
        max_timeout_seconds: float,
        changes: ActionChangeFeed | None = None,
        *,
        max_actions: int = 10_000,
        max_conditions: int = 100,
        topics: Mapping[str, Callable[[str], Awaitable[None]]] | None = None,
    ) -> None:
        self._store = store
        #: other news the change feed carries, by pseudo-tenant (a workflow's new event waits)
        self._topics = dict(topics or {})
        self._changes: ActionChangeFeed = changes or LocalChangeFeed()
        self._matcher = matcher
        self._registry = registry
        self._renderer = renderer
        self._max_timeout = max_timeout_seconds
        #: settings ``max_actions_per_tenant`` and ``max_conditions_per_action``
        self._max_actions = max_actions
        self._max_conditions = max_conditions
        self._loaded: set[str] = set()
        self._versions: dict[tuple[str, str, int], Action] = {}

    async def ensure_loaded(self, tenant: str) -> None:
        """Load a tenant's actions into the matcher the first time this process needs them."""
        if tenant not in self._loaded:
            self._matcher.load(tenant, await self._store.all_actions(tenant))
            self._loaded.add(tenant)

    def loaded_tenants(self) -> list[str]:
        return sorted(self._loaded) + sorted(self._topics)

    async def reload(self, tenant: str, name: str) -> None:
        """Follow a change made by another process: one action, or the whole tenant when ``name`` is empty."""
        topic = self._topics.get(tenant)
        if topic is not None:
            await topic(name)
            return
        if tenant not in self._loaded:
            return  # loaded fresh from the store the first time it is needed
        if not name:
            self._matcher.load(tenant, await self._store.all_actions(tenant))
            return
        try:
            self._matcher.put(await self._store.get_action(tenant, name))
        except NotFound:
            self._matcher.remove(tenant, name)

    def validate(self, action: Action) -> CompiledTrigger:
        """Everything a saved action must satisfy; raises ``InvalidArgument`` naming the field.

        Returns the compiled trigger so the matcher does not compile it twice."""
        v = Violations()
        if not ACTION_NAME.match(action.name):
            v.add("action_id", "must match [a-z0-9][a-z0-9._-]{0,99}")
        if not 0 < action.timeout_seconds <= self._max_timeout:
            v.add("timeout_seconds", f"must be > 0 and <= {self._max_timeout:g}")
        rp = action.retry_policy
        if not 0 <= rp.max_retries <= 100:
            v.add("retry_policy.max_retries", "must be between 0 and 100")
        if rp.backoff not in BACKOFFS:
            v.add("retry_policy.backoff", f"must be one of {', '.join(BACKOFFS)}")
        if rp.initial_delay_ms < 0 or rp.max_delay_ms < 0 or rp.max_age_seconds < 0:
            v.add("retry_policy", "delays and max_age must not be negative")
        if action.max_concurrency < 0:
            v.add("max_concurrency", "must not be negative")
        if action.rate_limit.per_minute < 0 or action.rate_limit.per_hour < 0:
            v.add("rate_limit", "must not be negative")
        if len(action.tags) > MAX_TAGS or any(not t or len(t) > 64 for t in action.tags):
            v.add("tags", f"at most {MAX_TAGS} tags of 1 to 64 characters")
        if len(action.description) > 4096:
            v.add("description", "at most 4096 characters")
        conditions = condition_count(action.trigger.conditions)
        if conditions > self._max_conditions:
            v.add(
                "trigger.conditions",
                f"at most {self._max_conditions} conditions, groups and their members counted"
                f" (max_conditions_per_action); this trigger has {conditions}",
            )
        v.raise_if_any("invalid action")
        compiled = self._matcher.compile(action.trigger, "trigger")
        handler_type = self._registry.get(action.handler.type, "handler.type", action.handler.version)
        handler_type.check_config(action.handler.config, "handler.config")
        self._renderer.check(action.handler.config, "handler.config", handler_type.raw_config_keys)
        return compiled

    def _check_room(self, tenant: str) -> None:
        """``ResourceExhausted`` when the tenant already has ``max_actions`` actions."""
        count = len(self._matcher.actions(tenant))
        if count >= self._max_actions:
            raise ResourceExhausted(
                f"tenant {tenant!r} has {count} actions, the most max_actions_per_tenant allows"
                f" ({self._max_actions}): delete actions it no longer needs, or raise the limit",
                reason="TOO_MANY_ACTIONS",
                metadata={"tenant": tenant, "limit": "max_actions_per_tenant", "max": str(self._max_actions)},
            )

    async def create(self, action: Action, validate_only: bool = False) -> Action:
        compiled = self.validate(action)
        await self.ensure_loaded(action.tenant)
        self._check_room(action.tenant)
        if validate_only:
            return action
        action.id = new_id()
        action.created_at = action.updated_at = utcnow()
        stored = await self._store.create_action(action)
        self._matcher.put(stored, compiled)
        await self._changes.publish(stored.tenant, stored.name)
        return stored

    async def update(self, action: Action, expected_version: int | None, validate_only: bool = False) -> Action:
        compiled = self.validate(action)
        if validate_only:
            return action
        await self.ensure_loaded(action.tenant)
        stored = await self._store.update_action(action, expected_version)
        self._matcher.put(stored, compiled)
        await self._changes.publish(stored.tenant, stored.name)
        return stored

    async def set_enabled(self, tenant: str, name: str, enabled: bool) -> Action:
        await self.ensure_loaded(tenant)
        stored = await self._store.set_action_enabled(tenant, name, enabled)
        self._matcher.put(stored)
        await self._changes.publish(stored.tenant, stored.name)
        return stored

    async def delete(self, tenant: str, name: str) -> None:
        await self.ensure_loaded(tenant)
        await self._store.delete_action(tenant, name)
        self._matcher.remove(tenant, name)
        await self._changes.publish(tenant, name)

    async def get(self, tenant: str, name: str, version: int = 0) -> Action:
        if version < 0:
            raise InvalidArgument.field("version", "must not be negative")
        return await self._store.get_action(tenant, name, version)

    async def list(
        self, tenant: str, page_size: int, page_token: str, filter: ActionFilter | None = None
    ) -> Page[Action]:
        return await self._store.list_actions(tenant, page_size, page_token, filter)

    async def version(self, tenant: str, action_id: str, version: int) -> Action:
        """An exact version by stable id (immutable, so cached)."""
        key = (tenant, action_id, version)
        action = self._versions.get(key)
        if action is None:
            action = await self._store.get_action_version(tenant, action_id, version)
            if len(self._versions) > 10_000:
                self._versions.clear()
            self._versions[key] = action
        return action


__all__ = ["ActionCatalog"]
