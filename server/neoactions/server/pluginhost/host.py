"""``PluginHost``: install, update and uninstall plugins at runtime, and keep every process in step.

Install: resolve the name and version range in the configured registries → fetch the
manifest and the artifact → validate the manifest → check the artifact's sha256 → verify
the signature against the trusted keys → check the neoactions range, the kind and the
capabilities granted → build the handler types (nothing registered yet) → store the
version with its artifact → register the types here → tell the other processes (the
action change feed, topic :data:`TOPIC`), which load it from the store. Any refusal leaves
nothing stored and nothing registered.

Update installs a newer version beside the old ones: executions that started on an old
version finish on it (an execution resolves its handler version once), and new
executions take the newest version the action's range allows. The previous version stays;
older ones are removed when nothing uses them (:meth:`PluginHost.prune`). Uninstall removes
every version, refused while enabled actions use the plugin's types unless forced, which
disables those actions first. Removing a version removes its stored artifact and this
process's local files of it (:mod:`neoactions.server.pluginhost.cleanup`) once no installed
version shares the artifact.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NeoActionsError, NotFound
from neoactions.domain.model import utcnow
from neoactions.plugins.installed import ACTIVE, InstalledPlugin
from neoactions.plugins.manifest import Manifest, parse_manifest
from neoactions.plugins.registry import Fetched, Registry, RegistryEntry, Unreachable, resolve, search, sha256
from neoactions.plugins.signing import TrustedKeys
from neoactions.plugins.versions import RangeError, parse_range, parse_version
from neoactions.server.changes import ActionChangeFeed, LocalChangeFeed
from neoactions.server.pluginhost.cleanup import remove_local
from neoactions.server.pluginhost.container import container_handler_types
from neoactions.server.pluginhost.port import PluginStore
from neoactions.server.pluginhost.python import python_handler_types
from neoactions.server.pluginhost.wasm import wasm_handler_types
from neoactions.server.runners import HandlerRegistry, HandlerType

log = logging.getLogger(__name__)

#: the change-feed "tenant" of plugin changes (no tenant slug contains ``*``)
TOPIC = "*plugins"
#: kinds this server installs
SUPPORTED_KINDS = ("wasm", "container", "python-sidecar")

#: ``(tenant, action)`` of the enabled actions using any of the given handler types
ActionsUsing = Callable[[Sequence[str]], Awaitable[list[tuple[str, str]]]]
DisableAction = Callable[[str, str], Awaitable[None]]
#: for the given handler types: the ``handler_version`` of every unfinished execution ("" when
#: not resolved yet) and the version range of every enabled action
VersionsInUse = Callable[[Sequence[str]], Awaitable[tuple[list[str], list[str]]]]


def server_version() -> str:
    try:
        return importlib.metadata.version("neoactions")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree not installed
        return "0.0.0"


@dataclass(slots=True)
class PluginInfo:
    """A plugin as ``plugins list``/``show`` present it: installed versions, or a built-in type."""

    name: str
    version: str
    versions: list[str]
    builtin: bool
    description: str
    kind: str
    handler_types: list[dict[str, Any]]
    requested: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    registry: str = ""
    signed_by: str = ""
    installed_by: str = ""
    installed_at: datetime | None = None
    license: str = ""
    homepage: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Removed:
    versions: list[str]
    #: ``tenant/action`` of the actions a forced uninstall disabled
    disabled_actions: list[str]


def parse_grants(grants: Sequence[str]) -> list[str]:
    """Grants as given (``net:HOST``, ``secret:NAME``; comma-separated lists allowed), checked."""
    out: list[str] = []
    for raw in grants:
        for grant in (g.strip() for g in raw.split(",")):
            if not grant:
                continue
            kind, _, value = grant.partition(":")
            if kind not in ("net", "secret") or not value:
                raise InvalidArgument.field("grants", f"{grant!r}: a grant is net:HOST or secret:NAME")
            out.append(f"{kind}:{value}")
    return sorted(set(out))


class PluginHost:
    """Installed plugins of this process, in step with the store."""

    def __init__(
        self,
        store: PluginStore,
        registry: HandlerRegistry,
        *,
        registries: Sequence[str] = (),
        trusted_keys: Sequence[str] = (),
        allow_unsigned: bool = False,
        changes: ActionChangeFeed | None = None,
        actions_using: ActionsUsing | None = None,
        disable_action: DisableAction | None = None,
        versions_in_use: VersionsInUse | None = None,
        version: str = "",
    ) -> None:
        self._store = store
        self._registry = registry
        self._registries = list(registries)
        self._trusted = list(trusted_keys)
        self._allow_unsigned = allow_unsigned
        self._changes: ActionChangeFeed = changes or LocalChangeFeed()
        self._actions_using = actions_using
        self._disable_action = disable_action
        self._versions_in_use = versions_in_use
        self.server_version = version or server_version()
        #: (name, version) -> the installed record and its registered handler types
        self._loaded: dict[tuple[str, str], tuple[InstalledPlugin, list[HandlerType]]] = {}
        self._lock = asyncio.Lock()

    # --- every process --------------------------------------------------------------------

    async def start(self) -> None:
        """Register every installed plugin (the service starts)."""
        await self.sync()

    async def sync(self, name: str = "") -> None:
        """Follow the store: register versions installed elsewhere, remove those uninstalled."""
        async with self._lock:
            rows = {(p.name, p.version): p for p in await self._store.list_plugins(name)}
            gone = []
            for key in [k for k in self._loaded if (not name or k[0] == name) and k not in rows]:
                gone += await self._deactivate(key)
            await self._remove_local(gone)
            for key, row in rows.items():
                if key in self._loaded:
                    continue
                try:
                    manifest = parse_manifest(row.manifest)
                    artifact = await self._store.get_plugin_artifact(row.artifact_sha256)
                    types = await self._build(manifest, artifact, row.grants)
                    await self._activate(row, types)
                except NeoActionsError as exc:
                    log.error("plugin %s %s cannot be loaded here: %s", row.name, row.version, exc.message)
                else:
                    log.info("plugin %s %s loaded", row.name, row.version)

    async def on_change(self, name: str) -> None:
        """A change made by another process (``name`` empty: anything may have changed)."""
        await self.sync(name)

    # --- reading ----------------------------------------------------------------------------

    def registries(self, only: str = "") -> list[Registry]:
        locations = [only] if only else self._registries
        return [Registry(location) for location in locations]

    async def search(
        self, text: str = "", registry: str = "", unreachable: list[Unreachable] | None = None
    ) -> list[RegistryEntry]:
        """What the reachable registries offer; the registries that cannot be read are
        appended to ``unreachable`` (when given; logged either way), never failing the search."""
        self._check_configured(registry)
        down: list[Unreachable] = []
        found = await asyncio.to_thread(search, self.registries(registry), text, down)
        for u in down:
            log.warning("plugin registry %s not searched: %s", u.registry, u.message)
        if unreachable is not None:
            unreachable += down
        return found

    def _check_configured(self, registry: str) -> None:
        if registry and registry not in self._registries:
            # only configured registries: an API caller must not make the server fetch any URL
            raise InvalidArgument.field(
                "registry", f"{registry!r} is not one of this server's plugin_registries", reason="UNKNOWN_REGISTRY"
            )

    def installed_versions(self, name: str) -> list[str]:
        return sorted((v for n, v in self._loaded if n == name), key=parse_version)

    def listed(self, include_builtin: bool = True) -> list[PluginInfo]:
        out = [self._info(name) for name in sorted({n for n, _ in self._loaded})]
        if include_builtin:
            out += self._builtins()
        return sorted(out, key=lambda p: (p.builtin, p.name))

    def get(self, name: str) -> PluginInfo:
        if any(n == name for n, _ in self._loaded):
            return self._info(name)
        for info in self._builtins():
            if info.name == name:
                return info
        raise NotFound(f"no plugin named {name!r} is installed", reason="PLUGIN_NOT_FOUND")

    def _info(self, name: str) -> PluginInfo:
        versions = self.installed_versions(name)
        row, _ = self._loaded[(name, versions[-1])]
        manifest = parse_manifest(row.manifest)
        return PluginInfo(
            name=name,
            version=row.version,
            versions=versions,
            builtin=False,
            description=manifest.description,
            kind=manifest.kind,
            handler_types=[
                {
                    "name": t.name,
                    "kind": t.kind,
                    "description": t.description,
                    "config_schema": t.config_schema,
                    "examples": list(t.examples),
                }
                for t in manifest.handler_types
            ],
            requested=manifest.capabilities.grants_needed(),
            grants=list(row.grants),
            registry=row.registry,
            signed_by=row.signed_by,
            installed_by=row.installed_by,
            installed_at=row.installed_at,
            license=manifest.license,
            homepage=manifest.homepage,
            manifest=row.manifest,
        )

    def _builtins(self) -> list[PluginInfo]:
        """Every built-in handler type as a plugin of the same shape: a manifest with the
        server's version, its handler type and config schema, no artifact (it ships with the server)."""
        out = []
        for type_name in self._registry.names():
            if "" not in self._registry.versions(type_name):
                continue
            t = self._registry.get(type_name, version="")
            handler = {
                "name": t.name,
                "kind": "built-in",
                "description": t.description,
                "config_schema": t.config_schema,
                "examples": [],
            }
            manifest = {
                "name": type_name,
                "version": self.server_version,
                "description": t.description,
                "builtin": True,
                "handler_types": [{k: v for k, v in handler.items() if k != "examples"}],
            }
            out.append(
                PluginInfo(
                    name=type_name,
                    version=self.server_version,
                    versions=[self.server_version],
                    builtin=True,
                    description=t.description,
                    kind="built-in",
                    handler_types=[handler],
                    manifest=manifest,
                )
            )
        return out

    # --- changing (the engine checks the caller first) -----------------------------------------

    async def install(
        self, name: str, wanted: str = "", registry: str = "", grants: Sequence[str] = (), by: str = ""
    ) -> InstalledPlugin:
        """Install the newest version of ``name`` that ``wanted`` allows."""
        if any(n == name for n, _ in self._loaded):
            raise FailedPrecondition(
                f"plugin {name} is already installed ({', '.join(self.installed_versions(name))});"
                " use update to install another version",
                reason="PLUGIN_ALREADY_INSTALLED",
            )
        return await self._install(name, wanted, registry, parse_grants(grants), by)

    async def update(
        self, name: str, wanted: str = "", grants: Sequence[str] | None = None, by: str = ""
    ) -> InstalledPlugin:
        """Install a newer version of an installed plugin beside the old ones; grants carry over
        unless new ones are given."""
        versions = self.installed_versions(name)
        if not versions:
            raise NotFound(f"plugin {name} is not installed", reason="PLUGIN_NOT_FOUND")
        current, _ = self._loaded[(name, versions[-1])]
        given = parse_grants(grants) if grants else list(current.grants)
        registry = current.registry if current.registry in self._registries else ""
        row = await self._install(name, wanted, registry, given, by, newer_than=versions[-1])
        if await self.prune(name):
            await self._changes.publish(TOPIC, name)
        return row

    async def prune(self, name: str) -> list[str]:
        """Remove the versions of ``name`` older than the two newest that nothing needs: no
        unfinished execution resolved to them, and no enabled action's range picks them. The
        previous version always stays (executions in flight on it finish there); while an
        unfinished execution has not resolved its version yet, nothing is removed. Returns
        the versions removed (from the store and from this process, with their local files)."""
        versions = self.installed_versions(name)
        if len(versions) <= 2 or self._versions_in_use is None:
            return []
        type_names = sorted({t.name for v in versions for t in self._loaded[(name, v)][1]})
        running, ranges = await self._versions_in_use(type_names)
        if "" in running:
            return []
        keep = set(running)
        for wanted in ranges:
            try:
                best = parse_range(wanted).best(versions)
            except RangeError:
                continue
            if best is not None:
                keep.add(best)
        removed: list[str] = []
        async with self._lock:
            gone = []
            for version in versions[:-2]:
                if version in keep or (name, version) not in self._loaded:
                    continue
                await self._store.delete_plugin(name, version)
                gone += await self._deactivate((name, version))
                removed.append(version)
            await self._remove_local(gone)
        if removed:
            log.info("plugin %s: removed versions %s, no longer used", name, ", ".join(removed))
        return removed

    async def uninstall(self, name: str, force: bool = False) -> Removed:
        versions = self.installed_versions(name)
        if not versions:
            raise NotFound(f"plugin {name} is not installed", reason="PLUGIN_NOT_FOUND")
        type_names = sorted({t.name for v in versions for t in self._loaded[(name, v)][1]})
        using = await self._actions_using(type_names) if self._actions_using is not None else []
        if using and not force:
            listed = ", ".join(f"{t}/{a}" for t, a in using)
            raise FailedPrecondition(
                f"plugin {name} is used by {len(using)} enabled action(s): {listed}"
                " (disable or change them first, or uninstall with force to disable them)",
                reason="PLUGIN_IN_USE",
                metadata={"actions": listed},
            )
        disabled = []
        if force and self._disable_action is not None:
            for tenant, action in using:
                await self._disable_action(tenant, action)
                disabled.append(f"{tenant}/{action}")
        async with self._lock:
            await self._store.delete_plugin(name)
            gone = []
            for version in versions:
                gone += await self._deactivate((name, version))
            await self._remove_local(gone)
        await self._changes.publish(TOPIC, name)
        return Removed(versions, disabled)

    async def _install(
        self, name: str, wanted: str, registry: str, grants: list[str], by: str, newer_than: str = ""
    ) -> InstalledPlugin:
        if not name:
            raise InvalidArgument.field("name", "name the plugin to install")
        self._check_configured(registry)
        found, version = await asyncio.to_thread(resolve, self.registries(registry), name, wanted)
        if newer_than and parse_version(version) <= parse_version(newer_than):
            raise FailedPrecondition(
                f"plugin {name} {newer_than} is installed and no newer version satisfies {wanted or '*'}"
                f" (newest found: {version})",
                reason="PLUGIN_UP_TO_DATE",
            )
        fetched = await asyncio.to_thread(found.fetch, name, version)
        manifest, signed_by = self.verify(fetched, name, version)
        missing = [g for g in manifest.capabilities.grants_needed() if g not in grants]
        if missing:
            raise FailedPrecondition(
                f"plugin {name} {version} needs capabilities that were not granted: {', '.join(missing)}"
                f" (grant them with --grant {','.join(missing)})",
                reason="PLUGIN_CAPABILITY_NOT_GRANTED",
                metadata={"missing": ",".join(missing)},
            )
        self._check_type_names(manifest)
        async with self._lock:
            kept = [g for g in grants if g in manifest.capabilities.grants_needed()]
            types = await self._build(manifest, fetched.artifact, kept)
            row = InstalledPlugin(
                name=name,
                version=version,
                manifest=manifest.document,
                artifact_sha256=manifest.artifact_sha256,
                grants=kept,
                registry=found.location,
                signed_by=signed_by,
                installed_by=by,
                installed_at=utcnow(),
                status=ACTIVE,
            )
            await self._store.put_plugin(row, fetched.artifact)
            await self._activate(row, types)
        await self._changes.publish(TOPIC, name)
        return row

    def verify(self, fetched: Fetched, name: str, version: str) -> tuple[Manifest, str]:
        """The manifest, checked: valid, the one asked for, its artifact's digest, then its
        signature, compatibility and kind. Returns it and the signing key's id ("" unsigned)."""
        manifest = parse_manifest(fetched.document)
        if (manifest.name, manifest.version) != (name, version):
            raise FailedPrecondition(
                f"the registry lists {name} {version} but its manifest is {manifest.name} {manifest.version}",
                reason="PLUGIN_MANIFEST_MISMATCH",
            )
        actual = sha256(fetched.artifact)
        if actual != manifest.artifact_sha256:
            raise FailedPrecondition(
                f"the artifact of {name} {version} has sha256 {actual}, but its manifest says"
                f" {manifest.artifact_sha256}: refusing a tampered or corrupted artifact",
                reason="PLUGIN_DIGEST_MISMATCH",
            )
        signed_by = ""
        try:
            signed_by = TrustedKeys.load(self._trusted).verify(manifest.document)
        except FailedPrecondition as exc:
            if not (self._allow_unsigned and exc.reason in ("PLUGIN_UNSIGNED", "PLUGIN_UNTRUSTED_KEY")):
                raise
            log.warning("installing %s %s without a trusted signature: %s", name, version, exc.message)
        except InvalidArgument as exc:
            raise FailedPrecondition(f"a trusted plugin key cannot be read: {exc.message}") from None
        if manifest.neoactions:
            try:
                compatible = parse_range(manifest.neoactions).allows(self.server_version)
            except RangeError:
                compatible = False
            if not compatible:
                raise FailedPrecondition(
                    f"plugin {name} {version} supports neoactions {manifest.neoactions}; this server is"
                    f" {self.server_version}",
                    reason="PLUGIN_INCOMPATIBLE",
                )
        if manifest.kind not in SUPPORTED_KINDS:
            raise FailedPrecondition(
                f"plugin {name} {version} is a {manifest.kind} plugin; this server installs"
                f" {', '.join(SUPPORTED_KINDS)} plugins only",
                reason="PLUGIN_KIND_UNSUPPORTED",
            )
        return manifest, signed_by

    def _check_type_names(self, manifest: Manifest) -> None:
        for type_name in manifest.type_names():
            if "" in self._registry.versions(type_name):
                raise FailedPrecondition(
                    f"plugin {manifest.name} provides {type_name!r}, a built-in handler type",
                    reason="PLUGIN_TYPE_CONFLICT",
                )
            owners = {n for (n, _), (_, ts) in self._loaded.items() if any(t.name == type_name for t in ts)}
            if owners - {manifest.name}:
                raise FailedPrecondition(
                    f"plugin {manifest.name} provides {type_name!r}, already provided by plugin"
                    f" {', '.join(sorted(owners))}",
                    reason="PLUGIN_TYPE_CONFLICT",
                )

    async def _build(self, manifest: Manifest, artifact: bytes, grants: Sequence[str]) -> list[HandlerType]:
        if manifest.kind == "wasm":
            return await wasm_handler_types(manifest, artifact, self._registry, grants)
        if manifest.kind == "container":
            return await container_handler_types(manifest, artifact, self._registry, grants)
        if manifest.kind == "python-sidecar":
            return await python_handler_types(manifest, artifact, self._registry, grants)
        raise FailedPrecondition(
            f"{manifest.kind} plugins are not supported by this server", reason="PLUGIN_KIND_UNSUPPORTED"
        )

    async def _activate(self, row: InstalledPlugin, types: list[HandlerType]) -> None:
        installed: list[HandlerType] = []
        try:
            for handler_type in types:
                await self._registry.install(handler_type)
                installed.append(handler_type)
        except BaseException:
            for handler_type in installed:
                await self._registry.remove(handler_type.name, handler_type.version)
            raise
        self._loaded[(row.name, row.version)] = (row, types)

    async def _deactivate(self, key: tuple[str, str]) -> list[InstalledPlugin]:
        """Unregister (and close) a version's handler types; returns its record ([] when it
        was not loaded)."""
        entry = self._loaded.pop(key, None)
        if entry is None:
            return []
        for handler_type in entry[1]:
            await self._registry.remove(handler_type.name, handler_type.version)
        return [entry[0]]

    async def _remove_local(self, rows: Sequence[InstalledPlugin]) -> None:
        """This process's files (and loaded image) of the removed versions whose artifact no
        loaded version still uses."""
        if not rows:
            return
        used = {row.artifact_sha256 for row, _ in self._loaded.values()}
        # and what the store holds now: a process sharing this data directory may have
        # installed the same artifact again meanwhile
        used |= {p.artifact_sha256 for p in await self._store.list_plugins()}
        for sha in sorted({r.artifact_sha256 for r in rows} - used):
            row = next(r for r in rows if r.artifact_sha256 == sha)
            try:
                kind = parse_manifest(row.manifest).kind
            except NeoActionsError:
                continue
            await remove_local(self._registry, kind, sha)


def with_plugin_changes(
    reload: Callable[[str, str], Awaitable[None]], loaded: Callable[[], list[str]], host: PluginHost
) -> tuple[Callable[[str, str], Awaitable[None]], Callable[[], list[str]]]:
    """The change feed's callbacks with plugin changes routed to ``host``: one feed (and one
    LISTEN connection) carries action and plugin changes; a reconnect resyncs both."""

    async def on_change(tenant: str, name: str) -> None:
        if tenant == TOPIC:
            await host.on_change(name)
        else:
            await reload(tenant, name)

    return on_change, lambda: [*loaded(), TOPIC]


__all__ = ["TOPIC", "PluginHost", "PluginInfo", "Removed", "parse_grants", "server_version", "with_plugin_changes"]
