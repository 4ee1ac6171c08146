"""Secrets to and from their protobuf messages (``neoactions.v1.secrets``), for the server
and the client alike."""

from __future__ import annotations

from neoactions.domain.convert import dt, ts
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.secrets import MasterKeyRotation, SecretInfo
from neoactions.v1 import secrets_pb2


def secret_resource(tenant: str, name: str) -> str:
    return f"tenants/{tenant}/secrets/{name}"


def secret_to_pb(s: SecretInfo) -> secrets_pb2.Secret:
    return secrets_pb2.Secret(
        name=secret_resource(s.tenant, s.name),
        create_time=ts(s.created_at),
        update_time=ts(s.updated_at),
        version=s.version,
        created_by=s.created_by,
    )


def secret_from_pb(msg: secrets_pb2.Secret) -> SecretInfo:
    parts = msg.name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "secrets":
        raise InvalidArgument.field("name", f"not a secret name: {msg.name!r}")
    return SecretInfo(
        tenant=parts[1],
        name=parts[3],
        created_at=dt(msg.create_time, "create_time"),
        updated_at=dt(msg.update_time, "update_time"),
        version=msg.version,
        created_by=msg.created_by,
    )


def rotation_to_pb(r: MasterKeyRotation) -> secrets_pb2.RotateMasterKeyResponse:
    return secrets_pb2.RotateMasterKeyResponse(
        key_id=r.key_id, resealed=r.resealed, remaining=r.remaining, persisted=r.persisted
    )


def rotation_from_pb(msg: secrets_pb2.RotateMasterKeyResponse) -> MasterKeyRotation:
    return MasterKeyRotation(msg.key_id, msg.resealed, msg.remaining, msg.persisted)


__all__ = ["rotation_from_pb", "rotation_to_pb", "secret_from_pb", "secret_resource", "secret_to_pb"]
