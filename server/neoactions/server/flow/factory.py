"""Choosing the flow-control implementation from the service settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neoactions.server.flow.config import FlowControlConfig
from neoactions.server.flow.inprocess import InProcessFlowControl
from neoactions.server.flow.port import FlowControl


def create_flow_control(
    redis_url: str = "",
    config: FlowControlConfig | Mapping[str, Any] | None = None,
    *,
    prefix: str = "neoactions",
) -> FlowControl:
    """Redis-backed (shared by all workers) when ``redis_url`` is set, else in-process (embedded mode).

    ``config`` may be a :class:`FlowControlConfig` or the plain mapping of the
    ``flow_control`` settings section. ``prefix`` is the deployment's Redis key prefix
    (``queue_prefix``): unless the mapping names a ``key_prefix``, flow-control keys live
    under ``<prefix>:flow``, so two deployments sharing a Redis database share no
    breakers, slots or rate windows.
    """
    if not isinstance(config, FlowControlConfig):
        values = dict(config or {})
        values.setdefault("key_prefix", f"{prefix}:flow")
        config = FlowControlConfig.from_mapping(values)
    if redis_url:
        # the Redis adapter (and the redis package) load only when a deployment uses them
        from neoactions.server.flow.redis_flow import RedisFlowControl

        return RedisFlowControl.from_url(redis_url, config)
    return InProcessFlowControl(config)


__all__ = ["create_flow_control"]
