"""SecretService: set, list (names and metadata only), delete, rotate the master key."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from neoactions.domain import names
from neoactions.domain.secrets_pb import rotation_to_pb, secret_to_pb
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.v1 import secrets_pb2, secrets_pb2_grpc


class SecretServicer(secrets_pb2_grpc.SecretServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def SetSecret(
        self, request: secrets_pb2.SetSecretRequest, context: grpc.aio.ServicerContext
    ) -> secrets_pb2.Secret:
        tenant = names.parse_tenant(request.parent)
        info = await self._engine.set_secret(caller_of(context), tenant, request.secret_id, request.value)
        return secret_to_pb(info)

    @unary
    async def ListSecrets(
        self, request: secrets_pb2.ListSecretsRequest, context: grpc.aio.ServicerContext
    ) -> secrets_pb2.ListSecretsResponse:
        tenant = names.parse_tenant(request.parent)
        page = await self._engine.list_secrets(caller_of(context), tenant, request.page_size, request.page_token)
        return secrets_pb2.ListSecretsResponse(
            secrets=[secret_to_pb(s) for s in page.items], next_page_token=page.next_page_token
        )

    @unary
    async def DeleteSecret(
        self, request: secrets_pb2.DeleteSecretRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        tenant, name = names.parse_child(request.name, "secrets")
        await self._engine.delete_secret(caller_of(context), tenant, name)
        return empty_pb2.Empty()

    @unary
    async def RotateMasterKey(
        self, request: secrets_pb2.RotateMasterKeyRequest, context: grpc.aio.ServicerContext
    ) -> secrets_pb2.RotateMasterKeyResponse:
        rotation = await self._engine.rotate_master_key(caller_of(context), request.new_master_key)
        return rotation_to_pb(rotation)


__all__ = ["SecretServicer"]
