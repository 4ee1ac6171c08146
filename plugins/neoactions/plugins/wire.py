"""Plugins on the wire: ``neoactions.v1.plugins_pb2`` messages and the plain JSON documents the
client and the CLI show (``plugins list --json``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from neoactions.plugins.registry import RegistryEntry
from neoactions.v1 import plugins_pb2


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(UTC).replace(tzinfo=None))
    return stamp


def plugin_to_pb(info: Any) -> plugins_pb2.Plugin:
    """A ``PluginInfo`` of the server's plugin host as a message."""
    return plugins_pb2.Plugin(
        name=info.name,
        version=info.version,
        versions=list(info.versions),
        builtin=info.builtin,
        description=info.description,
        kind=info.kind,
        handler_types=[
            plugins_pb2.PluginHandlerType(
                name=t["name"],
                kind=t["kind"],
                description=t.get("description", ""),
                config_schema_json=json.dumps(t.get("config_schema") or {}, sort_keys=True),
                examples_json=json.dumps(t.get("examples") or []),
            )
            for t in info.handler_types
        ],
        requested_capabilities=list(info.requested),
        granted_capabilities=list(info.grants),
        registry=info.registry,
        signed_by=info.signed_by,
        installed_by=info.installed_by,
        install_time=_ts(info.installed_at),
        license=info.license,
        homepage=info.homepage,
        manifest_json=json.dumps(info.manifest, sort_keys=True) if info.manifest else "",
    )


def plugin_from_pb(msg: plugins_pb2.Plugin) -> dict[str, Any]:
    """A plugin as a JSON document."""
    return {
        "name": msg.name,
        "version": msg.version,
        "versions": list(msg.versions),
        "builtin": msg.builtin,
        "description": msg.description,
        "kind": msg.kind,
        "handler_types": [
            {
                "name": t.name,
                "kind": t.kind,
                "description": t.description,
                "config_schema": json.loads(t.config_schema_json or "{}"),
                "examples": json.loads(t.examples_json or "[]"),
            }
            for t in msg.handler_types
        ],
        "requested_capabilities": list(msg.requested_capabilities),
        "granted_capabilities": list(msg.granted_capabilities),
        "registry": msg.registry,
        "signed_by": msg.signed_by,
        "installed_by": msg.installed_by,
        "installed_at": msg.install_time.ToDatetime(tzinfo=UTC).isoformat() if msg.HasField("install_time") else None,
        "license": msg.license,
        "homepage": msg.homepage,
        "manifest": json.loads(msg.manifest_json) if msg.manifest_json else None,
    }


def entry_to_pb(entry: RegistryEntry, installed_version: str = "") -> plugins_pb2.RegistryPlugin:
    return plugins_pb2.RegistryPlugin(
        registry=entry.registry,
        name=entry.name,
        description=entry.description,
        versions=list(entry.versions),
        latest=entry.latest,
        kind=entry.kind,
        handler_types=list(entry.handler_types),
        installed_version=installed_version,
    )


def entry_from_pb(msg: plugins_pb2.RegistryPlugin) -> dict[str, Any]:
    return {
        "registry": msg.registry,
        "name": msg.name,
        "description": msg.description,
        "versions": list(msg.versions),
        "latest": msg.latest,
        "kind": msg.kind,
        "handler_types": list(msg.handler_types),
        "installed_version": msg.installed_version,
    }


def removal_from_pb(msg: plugins_pb2.UninstallPluginResponse) -> dict[str, Any]:
    return {"removed_versions": list(msg.removed_versions), "disabled_actions": list(msg.disabled_actions)}


def as_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)


__all__ = ["entry_from_pb", "entry_to_pb", "plugin_from_pb", "plugin_to_pb", "removal_from_pb"]
