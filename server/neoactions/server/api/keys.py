"""ApiKeyService: create, list and revoke API keys."""

from __future__ import annotations

import grpc

from neoactions.domain import names
from neoactions.domain.keys_convert import api_key_to_pb
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.v1 import keys_pb2, keys_pb2_grpc


class ApiKeyServicer(keys_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def CreateApiKey(
        self, request: keys_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.CreateApiKeyResponse:
        tenant = names.parse_tenant(request.parent)
        ttl = request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else 0.0
        key, token = await self._engine.create_api_key(
            caller_of(context), tenant, request.display_name, request.role, ttl, request.publish_rate
        )
        return keys_pb2.CreateApiKeyResponse(api_key=api_key_to_pb(key), key=token)

    @unary
    async def ListApiKeys(
        self, request: keys_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ListApiKeysResponse:
        tenant = names.parse_tenant(request.parent)
        page = await self._engine.list_api_keys(caller_of(context), tenant, request.page_size, request.page_token)
        return keys_pb2.ListApiKeysResponse(
            api_keys=[api_key_to_pb(k) for k in page.items], next_page_token=page.next_page_token
        )

    @unary
    async def RevokeApiKey(
        self, request: keys_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ApiKey:
        tenant, key_id = names.parse_child(request.name, "apiKeys")
        return api_key_to_pb(await self._engine.revoke_api_key(caller_of(context), tenant, key_id))
