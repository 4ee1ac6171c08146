"""Registers every servicer on a gRPC server."""

from __future__ import annotations

from typing import Any

import grpc

from neoactions.server.api.actions import ActionServicer
from neoactions.server.api.audit import AuditServicer
from neoactions.server.api.errors import TolerantRegistration
from neoactions.server.api.events import EventServicer
from neoactions.server.api.executions import ExecutionServicer
from neoactions.server.api.keys import ApiKeyServicer
from neoactions.server.api.plugins import PluginServicer
from neoactions.server.api.replay import ReplayServicer
from neoactions.server.api.secrets import SecretServicer
from neoactions.server.api.stats import StatsServicer
from neoactions.server.api.tenants import TenantServicer
from neoactions.server.engine import Engine
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    plugins_pb2,
    plugins_pb2_grpc,
    replay_pb2,
    replay_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    stats_pb2,
    stats_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)

SERVICE_NAMES = (
    events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    actions_pb2.DESCRIPTOR.services_by_name["ActionService"].full_name,
    executions_pb2.DESCRIPTOR.services_by_name["ExecutionService"].full_name,
    tenants_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
    keys_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
    secrets_pb2.DESCRIPTOR.services_by_name["SecretService"].full_name,
    replay_pb2.DESCRIPTOR.services_by_name["ReplayService"].full_name,
    stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
    plugins_pb2.DESCRIPTOR.services_by_name["PluginService"].full_name,
)


def add_servicers(server: grpc.aio.Server, engine: Engine) -> None:
    """Every servicer, each answering INVALID_ARGUMENT to a request that does not decode."""
    registration: Any = TolerantRegistration(server)
    events_pb2_grpc.add_EventServiceServicer_to_server(EventServicer(engine), registration)
    actions_pb2_grpc.add_ActionServiceServicer_to_server(ActionServicer(engine), registration)
    executions_pb2_grpc.add_ExecutionServiceServicer_to_server(ExecutionServicer(engine), registration)
    tenants_pb2_grpc.add_TenantServiceServicer_to_server(TenantServicer(engine), registration)
    keys_pb2_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(engine), registration)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(engine), registration)
    secrets_pb2_grpc.add_SecretServiceServicer_to_server(SecretServicer(engine), registration)
    replay_pb2_grpc.add_ReplayServiceServicer_to_server(ReplayServicer(engine), registration)
    stats_pb2_grpc.add_StatsServiceServicer_to_server(StatsServicer(engine), registration)
    plugins_pb2_grpc.add_PluginServiceServicer_to_server(PluginServicer(engine), registration)
    if sorted(registration.services) != sorted(SERVICE_NAMES):
        raise RuntimeError(f"servicers registered {registration.services}, expected {SERVICE_NAMES}")


__all__ = ["SERVICE_NAMES", "add_servicers"]
