"""TenantService: create and list tenants."""

from __future__ import annotations

import grpc

from neoactions.domain import convert, names
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import ADMIN_TENANT, Tenant
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.v1 import tenants_pb2, tenants_pb2_grpc


class TenantServicer(tenants_pb2_grpc.TenantServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def CreateTenant(
        self, request: tenants_pb2.CreateTenantRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.Tenant:
        slug = request.tenant_id
        if not names.TENANT_SLUG.match(slug) or slug == ADMIN_TENANT:
            raise InvalidArgument.field(
                "tenant_id", "must match [a-z][a-z0-9_]{0,40} and not be 'admin'", reason="INVALID_TENANT_ID"
            )
        created = await self._engine.create_tenant(
            caller_of(context), Tenant(slug=slug, display_name=request.tenant.display_name)
        )
        return convert.tenant_to_pb(created)

    @unary
    async def ListTenants(
        self, request: tenants_pb2.ListTenantsRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.ListTenantsResponse:
        page = await self._engine.list_tenants(caller_of(context), request.page_size, request.page_token)
        return tenants_pb2.ListTenantsResponse(
            tenants=[convert.tenant_to_pb(t) for t in page.items], next_page_token=page.next_page_token
        )

    @unary
    async def DeleteTenant(
        self, request: tenants_pb2.DeleteTenantRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.DeleteTenantResponse:
        slug = names.parse_tenant(request.name, "name")
        await self._engine.delete_tenant(caller_of(context), slug)
        return tenants_pb2.DeleteTenantResponse()
