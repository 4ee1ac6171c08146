"""grpc.health.v1 and server reflection are served next to the API."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from neoactions.client import authorized_channel
from tests.e2e.conftest import ServerProcess


async def test_health_and_reflection(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "neoactions.v1.EventService", "neoactions.v1.ExecutionService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        async for response in call:
            services = {s.name for s in response.list_services_response.service}
            break
        assert {
            "neoactions.v1.EventService",
            "neoactions.v1.ActionService",
            "neoactions.v1.ExecutionService",
            "neoactions.v1.TenantService",
            "grpc.health.v1.Health",
        } <= services
