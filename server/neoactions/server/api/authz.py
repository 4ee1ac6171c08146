"""Authorization at the gRPC edge: who is calling, and whether the method is open to them.

Every RPC of the service is **denied by default**: :data:`RPC_PERMISSIONS` names the
permission each method needs at least, and a method missing from it answers
``PERMISSION_DENIED`` to everyone (a test enumerates the service descriptors against this
table). Health and reflection are open (:data:`OPEN_SERVICES`).

:class:`Authentication` is a server interceptor: it reads the bearer token from the call's
metadata, asks the engine's key ring who it is, checks the method's permission against the
key's role, and runs the method with that :class:`~neoactions.server.access.Caller` in
:data:`CURRENT_CALLER`, where :func:`~neoactions.server.api.callers.caller_of` finds it. The
engine then checks the tenant and the permission of the operation itself.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from neoactions.domain.errors import NeoActionsError, PermissionDenied
from neoactions.domain.status import to_status
from neoactions.server.access import Caller, Permission
from neoactions.server.keys import KeyRing, missing_key

R, P, W, M = Permission.READ, Permission.PUBLISH, Permission.WRITE, Permission.MANAGE

#: the least permission each method needs (the engine checks each operation's own too)
RPC_PERMISSIONS: dict[str, Permission] = {
    "neoactions.v1.EventService/PublishEvent": P,
    "neoactions.v1.StatsService/GetActionStats": R,
    "neoactions.v1.StatsService/GetOverview": R,
    "neoactions.v1.StatsService/GetActionHealth": R,
    "neoactions.v1.EventService/PublishEvents": P,
    "neoactions.v1.EventService/GetEvent": R,
    "neoactions.v1.EventService/ListEvents": R,
    "neoactions.v1.EventService/StreamEvents": P,
    # a dry run is reading; a real replay needs WRITE, which the engine checks
    "neoactions.v1.ReplayService/ReplayEvents": R,
    "neoactions.v1.ReplayService/GetReplay": R,
    "neoactions.v1.ReplayService/WatchReplay": R,
    "neoactions.v1.ReplayService/CancelReplay": W,
    "neoactions.v1.ReplayService/BacktestAction": R,
    "neoactions.v1.ReplayService/GetRetention": R,
    "neoactions.v1.ReplayService/SetRetention": M,
    "neoactions.v1.ActionService/CreateAction": W,
    "neoactions.v1.ActionService/GetAction": R,
    "neoactions.v1.ActionService/ListActions": R,
    "neoactions.v1.ActionService/UpdateAction": W,
    "neoactions.v1.ActionService/DeleteAction": W,
    "neoactions.v1.ActionService/EnableAction": W,
    "neoactions.v1.ActionService/DisableAction": W,
    # explaining is reading; `execute: true` needs WRITE, which the engine checks
    "neoactions.v1.ActionService/TestAction": R,
    "neoactions.v1.ExecutionService/Execute": W,
    "neoactions.v1.ExecutionService/GetExecution": R,
    "neoactions.v1.ExecutionService/ListExecutions": R,
    "neoactions.v1.ExecutionService/WatchExecutions": R,
    "neoactions.v1.ExecutionService/CancelExecution": W,
    "neoactions.v1.ExecutionService/RetryExecution": W,
    "neoactions.v1.ExecutionService/ListDeadLetters": R,
    "neoactions.v1.ExecutionService/RequeueDeadLetters": W,
    "neoactions.v1.ExecutionService/PauseExecution": W,
    "neoactions.v1.ExecutionService/ResumeExecution": W,
    "neoactions.v1.TenantService/CreateTenant": M,
    "neoactions.v1.TenantService/ListTenants": R,
    "neoactions.v1.TenantService/DeleteTenant": M,
    "neoactions.v1.ApiKeyService/CreateApiKey": M,
    "neoactions.v1.ApiKeyService/ListApiKeys": M,
    "neoactions.v1.ApiKeyService/RevokeApiKey": M,
    # the audit log names every key's changes: admins only
    "neoactions.v1.AuditService/ListAuditEntries": M,
    # secrets: the tenant's admins; rotating the master key: the admin tenant's (the engine checks)
    "neoactions.v1.SecretService/SetSecret": M,
    "neoactions.v1.SecretService/ListSecrets": M,
    "neoactions.v1.SecretService/DeleteSecret": M,
    "neoactions.v1.SecretService/RotateMasterKey": M,
    # plugins are the whole service's: installing runs code for every tenant
    "neoactions.v1.PluginService/SearchRegistry": R,
    "neoactions.v1.PluginService/ListPlugins": R,
    "neoactions.v1.PluginService/GetPlugin": R,
    "neoactions.v1.PluginService/InstallPlugin": M,
    "neoactions.v1.PluginService/UpdatePlugin": M,
    "neoactions.v1.PluginService/UninstallPlugin": M,
}

#: services every caller may use without a key
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})

#: the caller of the call being served (set by :class:`Authentication`)
CURRENT_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("neoactions_caller", default=None)

_BEARER = "bearer "
REQUEST_ID = "x-request-id"
_MAX_REQUEST_ID = 128


def credentials(metadata: Any) -> tuple[str, str]:
    """The bearer token and request id a call's metadata carries ("" for what is absent)."""
    token = request_id = ""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            if value[: len(_BEARER)].lower() == _BEARER:
                token = value[len(_BEARER) :].strip()
        elif key == REQUEST_ID and isinstance(value, str):
            request_id = value[:_MAX_REQUEST_ID]
    return token, request_id


def service_of(method: str) -> str:
    """``/pkg.Service/Method`` → ``pkg.Service``."""
    return method.lstrip("/").partition("/")[0]


def denied_method(method: str) -> PermissionDenied:
    return PermissionDenied(f"{method} has no authorization rule: denied", reason="METHOD_NOT_AUTHORIZED")


class Authentication(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call but health and reflection, and admits it by its method's rule.

    It must be the server's last interceptor: it keeps each method's guarded handler and, from
    the second call on, answers without asking the interceptors after it."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        #: each method's guarded handler, built at its first call (a method's handler never changes)
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(handler_call_details)
        if handler is None or service_of(method) in OPEN_SERVICES:
            return handler
        permission = RPC_PERMISSIONS.get(method.lstrip("/"))
        guarded = self._guarded[method] = _guarded(handler, self._admission(permission, method.lstrip("/")))
        return guarded

    def _admission(self, permission: Permission | None, method: str) -> Callable[[Any], Awaitable[Caller]]:
        keys = self._keys

        async def admit(context: Any) -> Caller:
            if permission is None:
                raise denied_method(method)
            token, request_id = credentials(context.invocation_metadata())
            if not token:
                raise missing_key()
            caller = await keys.authenticate(token, request_id)
            assert caller.role is not None
            if permission not in caller.role.permissions:
                raise PermissionDenied(
                    f"the {caller.role.value} role may not call {method}",
                    reason="ROLE_NOT_ALLOWED",
                    metadata={"role": caller.role.value, "permission": permission.value},
                )
            return caller

        return admit


def _guarded(handler: grpc.RpcMethodHandler, admit: Callable[[Any], Awaitable[Caller]]) -> grpc.RpcMethodHandler:
    """``handler`` running only after ``admit`` let the call in, with its caller current."""

    async def enter(context: grpc.aio.ServicerContext) -> contextvars.Token[Caller | None]:
        try:
            caller = await admit(context)
        except NeoActionsError as exc:
            await context.abort_with_status(to_status(exc))
            raise AssertionError("unreachable") from None
        return CURRENT_CALLER.set(caller)

    def answering(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = await enter(context)
            try:
                return await inner(request, context)
            finally:
                CURRENT_CALLER.reset(token)

        return call

    def streaming(inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = await enter(context)
            try:
                async for item in inner(request, context):
                    yield item
            finally:
                CURRENT_CALLER.reset(token)

        return call

    h: Any = handler
    codecs = (h.request_deserializer, h.response_serializer)
    if h.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(answering(h.unary_unary), *codecs)
    if h.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(h.unary_stream), *codecs)
    if h.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(answering(h.stream_unary), *codecs)
    return grpc.stream_stream_rpc_method_handler(streaming(h.stream_stream), *codecs)


__all__ = ["CURRENT_CALLER", "OPEN_SERVICES", "RPC_PERMISSIONS", "Authentication", "credentials"]
