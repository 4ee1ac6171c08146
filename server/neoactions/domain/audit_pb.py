"""Audit entries to and from their protobuf messages (``neoactions.v1.audit``), for the
server and the client alike."""

from __future__ import annotations

from neoactions.domain.audit import AuditEntry
from neoactions.domain.convert import dict_to_struct, dt, struct_to_dict, ts
from neoactions.domain.errors import InvalidArgument
from neoactions.v1 import audit_pb2


def entry_name(tenant: str, entry_id: str) -> str:
    return f"tenants/{tenant}/auditEntries/{entry_id}"


def entry_to_pb(e: AuditEntry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        name=entry_name(e.tenant, e.id),
        time=ts(e.at),
        principal=e.principal,
        principal_name=e.principal_name,
        request_id=e.request_id,
        kind=e.kind,
        target=e.target,
        change=dict_to_struct(e.change),
    )


def entry_from_pb(msg: audit_pb2.AuditEntry) -> AuditEntry:
    parts = msg.name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "auditEntries":
        raise InvalidArgument.field("name", f"not an audit entry name: {msg.name!r}")
    return AuditEntry(
        kind=msg.kind,
        target=msg.target,
        change=struct_to_dict(msg.change),
        principal=msg.principal,
        principal_name=msg.principal_name,
        request_id=msg.request_id,
        tenant=parts[1],
        id=parts[3],
        at=dt(msg.time),
    )


__all__ = ["entry_from_pb", "entry_name", "entry_to_pb"]
