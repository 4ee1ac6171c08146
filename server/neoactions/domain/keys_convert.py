"""API keys to and from protobuf (``neoactions.v1.keys``)."""

from __future__ import annotations

from neoactions.domain.convert import dt, ts
from neoactions.domain.keys import ApiKey
from neoactions.v1 import keys_pb2


def api_key_name(tenant: str, key_id: str) -> str:
    return f"tenants/{tenant}/apiKeys/{key_id}"


def api_key_to_pb(key: ApiKey) -> keys_pb2.ApiKey:
    return keys_pb2.ApiKey(
        name=api_key_name(key.tenant, key.id),
        id=key.id,
        tenant=key.tenant,
        display_name=key.name,
        role=key.role,
        create_time=ts(key.created_at),
        last_use_time=ts(key.last_used_at),
        expire_time=ts(key.expires_at),
        revoke_time=ts(key.revoked_at),
        created_by=key.created_by,
        publish_rate=key.publish_rate,
    )


def api_key_from_pb(msg: keys_pb2.ApiKey) -> ApiKey:
    return ApiKey(
        id=msg.id,
        tenant=msg.tenant,
        name=msg.display_name,
        role=msg.role,
        created_at=dt(msg.create_time),
        last_used_at=dt(msg.last_use_time) if msg.HasField("last_use_time") else None,
        expires_at=dt(msg.expire_time) if msg.HasField("expire_time") else None,
        revoked_at=dt(msg.revoke_time) if msg.HasField("revoke_time") else None,
        created_by=msg.created_by,
        publish_rate=msg.publish_rate,
    )


__all__ = ["api_key_from_pb", "api_key_name", "api_key_to_pb"]
