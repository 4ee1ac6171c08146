"""PluginService: search registries, list, show, install, update and uninstall plugins."""

from __future__ import annotations

import grpc

from neoactions.domain.model import ADMIN_TENANT
from neoactions.plugins.registry import Unreachable
from neoactions.plugins.wire import entry_to_pb, plugin_to_pb
from neoactions.server.access import Caller
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.v1 import plugins_pb2, plugins_pb2_grpc


def _home(caller: Caller) -> str:
    """Plugins belong to the whole service: reading them is reading in the caller's own tenant."""
    return caller.home_tenant or ADMIN_TENANT


class PluginServicer(plugins_pb2_grpc.PluginServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def SearchRegistry(
        self, request: plugins_pb2.SearchRegistryRequest, context: grpc.aio.ServicerContext
    ) -> plugins_pb2.SearchRegistryResponse:
        caller = caller_of(context)
        unreachable: list[Unreachable] = []
        entries = await self._engine.search_plugins(caller, _home(caller), request.query, request.registry, unreachable)
        installed = {
            p.name: p.version for p in await self._engine.list_plugins(caller, _home(caller), include_builtin=False)
        }
        return plugins_pb2.SearchRegistryResponse(
            plugins=[entry_to_pb(e, installed.get(e.name, "")) for e in entries],
            unreachable_registries=[
                plugins_pb2.UnreachableRegistry(registry=u.registry, message=u.message) for u in unreachable
            ],
        )

    @unary
    async def ListPlugins(
        self, request: plugins_pb2.ListPluginsRequest, context: grpc.aio.ServicerContext
    ) -> plugins_pb2.ListPluginsResponse:
        caller = caller_of(context)
        found = await self._engine.list_plugins(caller, _home(caller), include_builtin=not request.installed_only)
        return plugins_pb2.ListPluginsResponse(plugins=[plugin_to_pb(p) for p in found])

    @unary
    async def GetPlugin(
        self, request: plugins_pb2.GetPluginRequest, context: grpc.aio.ServicerContext
    ) -> plugins_pb2.Plugin:
        caller = caller_of(context)
        return plugin_to_pb(await self._engine.get_plugin(caller, _home(caller), request.name))

    @unary
    async def InstallPlugin(
        self, request: plugins_pb2.InstallPluginRequest, context: grpc.aio.ServicerContext
    ) -> plugins_pb2.Plugin:
        info = await self._engine.install_plugin(
            caller_of(context), request.name, request.version, request.registry, list(request.grants)
        )
        return plugin_to_pb(info)

    @unary
    async def UpdatePlugin(
        self, request: plugins_pb2.UpdatePluginRequest, context: grpc.aio.ServicerContext
    ) -> plugins_pb2.Plugin:
        info = await self._engine.update_plugin(caller_of(context), request.name, request.version, list(request.grants))
        return plugin_to_pb(info)

    @unary
    async def UninstallPlugin(
        self, request: plugins_pb2.UninstallPluginRequest, context: grpc.aio.ServicerContext
    ) -> plugins_pb2.UninstallPluginResponse:
        removed = await self._engine.uninstall_plugin(caller_of(context), request.name, request.force)
        return plugins_pb2.UninstallPluginResponse(
            removed_versions=removed.versions, disabled_actions=removed.disabled_actions
        )


__all__ = ["PluginServicer"]
