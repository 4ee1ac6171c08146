"""AuditService: the tenant's audit log."""

from __future__ import annotations

import grpc

from neoactions.domain import convert, names
from neoactions.domain.audit_pb import entry_to_pb
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.server.store import AuditFilter
from neoactions.v1 import audit_pb2, audit_pb2_grpc


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def ListAuditEntries(
        self, request: audit_pb2.ListAuditEntriesRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListAuditEntriesResponse:
        tenant = names.parse_tenant(request.parent)
        flt = AuditFilter(
            kind=request.kind,
            principal=request.principal,
            target=request.target,
            since=convert.opt_dt(request, "start_time"),
            until=convert.opt_dt(request, "end_time"),
        )
        page = await self._engine.list_audit_entries(
            caller_of(context), tenant, flt, request.page_size, request.page_token
        )
        return audit_pb2.ListAuditEntriesResponse(
            entries=[entry_to_pb(e) for e in page.items], next_page_token=page.next_page_token
        )
