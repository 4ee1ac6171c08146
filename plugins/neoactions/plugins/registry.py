"""Plugin registries: an ``index.json`` at a folder path or an HTTP(S) URL.

The index lists every plugin, its versions and, per version, where its (signed) manifest
and its artifact are (paths relative to the index) and the artifact's sha256::

    {"format": "neoactions-plugin-index/1",
     "plugins": {"text-tools": {"description": "...",
        "versions": {"1.0.0": {"manifest": "text-tools/1.0.0/neoactions-plugin.json",
                               "artifact": "text-tools/1.0.0/text-tools.wasm",
                               "sha256": "...", "kind": "wasm", "handler_types": ["text.template"]}}}}}

Reads are blocking (files, ``urllib``); the server runs them on a thread.
:func:`publish` is the author's side: copy a built, signed plugin in and update the index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from neoactions.plugins.manifest import MANIFEST_FILE, Manifest, parse_manifest, read_manifest
from neoactions.plugins.versions import RangeError, newest, parse_range

INDEX_FILE = "index.json"
INDEX_FORMAT = "neoactions-plugin-index/1"
MANIFEST_JSON = "neoactions-plugin.json"
#: the largest index, manifest and artifact read from a registry
MAX_INDEX_BYTES = 16 << 20
MAX_ARTIFACT_BYTES = 512 << 20
HTTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One plugin of one registry, as a search shows it."""

    registry: str
    name: str
    description: str
    versions: tuple[str, ...]
    latest: str
    kind: str = ""
    handler_types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "name": self.name,
            "description": self.description,
            "versions": list(self.versions),
            "latest": self.latest,
            "kind": self.kind,
            "handler_types": list(self.handler_types),
        }


@dataclass(slots=True)
class Fetched:
    """A plugin version read from a registry, not yet verified."""

    registry: str
    document: dict[str, Any]
    artifact: bytes = field(repr=False)


class Registry:
    """One registry: a folder holding ``index.json``, or an HTTP(S) URL of one."""

    def __init__(self, location: str) -> None:
        location = location.strip()
        if not location:
            raise InvalidArgument.field("registry", "empty registry location")
        self.location = location
        parsed = urllib.parse.urlparse(location)
        self.remote = parsed.scheme in ("http", "https")
        if self.remote:
            base = location if location.endswith((".json", "/")) else location + "/"
            self._base = base.rsplit("/", 1)[0] + "/" if base.endswith(".json") else base
        else:
            path = Path(location.removeprefix("file://")).expanduser()
            self._folder = path.parent if path.name == INDEX_FILE else path

    def read(self, relative: str, limit: int = MAX_INDEX_BYTES) -> bytes:
        if relative.startswith("/") or ".." in Path(relative).parts:
            raise FailedPrecondition(f"registry {self.location}: refusing the location {relative!r}")
        if self.remote:
            url = urllib.parse.urljoin(self._base, relative)
            try:
                with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
                    data: bytes = response.read(limit + 1)
            except (urllib.error.URLError, OSError) as exc:
                raise Unavailable(f"registry {self.location}: cannot read {url}: {exc}") from None
        else:
            target = self._folder / relative
            try:
                if target.stat().st_size > limit:
                    raise FailedPrecondition(f"registry {self.location}: {relative} is larger than {limit} bytes")
                data = target.read_bytes()
            except OSError as exc:
                raise Unavailable(f"registry {self.location}: cannot read {target}: {exc.strerror}") from None
        if len(data) > limit:
            raise FailedPrecondition(f"registry {self.location}: {relative} is larger than {limit} bytes")
        return data

    def index(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.read(INDEX_FILE))
        except json.JSONDecodeError as exc:
            raise FailedPrecondition(f"registry {self.location}: index.json is not JSON ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("plugins"), dict):
            raise FailedPrecondition(f"registry {self.location}: index.json has no 'plugins' mapping")
        return doc

    def entries(self) -> list[RegistryEntry]:
        out = []
        for name, plugin in sorted(self.index()["plugins"].items()):
            versions = dict(plugin.get("versions") or {})
            latest = newest(versions) or ""
            info = versions.get(latest) or {}
            out.append(
                RegistryEntry(
                    registry=self.location,
                    name=name,
                    description=str(plugin.get("description", "")),
                    versions=tuple(sorted(versions, key=lambda v: (newest([v]) is None, v))),
                    latest=latest,
                    kind=str(info.get("kind", "")),
                    handler_types=tuple(info.get("handler_types") or ()),
                )
            )
        return out

    def fetch(self, name: str, version: str) -> Fetched:
        plugin = self.index()["plugins"].get(name) or {}
        info = (plugin.get("versions") or {}).get(version)
        if not isinstance(info, dict):
            raise NotFound(f"registry {self.location} has no {name} {version}", reason="PLUGIN_NOT_FOUND")
        try:
            document = json.loads(self.read(str(info["manifest"])))
        except (KeyError, json.JSONDecodeError) as exc:
            raise FailedPrecondition(
                f"registry {self.location}: the manifest of {name} {version} is unreadable ({exc})"
            ) from None
        artifact = self.read(str(info.get("artifact", "")), MAX_ARTIFACT_BYTES)
        return Fetched(self.location, document, artifact)


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A registry that could not be read (down, or an unreadable index): searches and installs
    go on with the others and name it."""

    registry: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "message": self.message}


def _entries(registry: Registry, unreachable: list[Unreachable] | None) -> list[RegistryEntry]:
    """The registry's entries; when ``unreachable`` is given, a registry that cannot be read
    is recorded there (and has no entries) instead of failing the whole call."""
    try:
        return registry.entries()
    except (Unavailable, FailedPrecondition) as exc:
        if unreachable is None:
            raise
        unreachable.append(Unreachable(registry.location, exc.message))
        return []


def unreachable_text(unreachable: Sequence[Unreachable]) -> str:
    return "; ".join(u.message for u in unreachable)


def search(
    registries: Sequence[Registry], text: str = "", unreachable: list[Unreachable] | None = None
) -> list[RegistryEntry]:
    """Every plugin of every registry whose name, description or handler types contain ``text``.
    With ``unreachable`` (a list), the registries that cannot be read are appended to it and
    the others answer; without it, the first such registry fails the search."""
    needle = text.casefold().strip()
    found = []
    for registry in registries:
        for entry in _entries(registry, unreachable):
            hay = " ".join([entry.name, entry.description, *entry.handler_types]).casefold()
            if not needle or needle in hay:
                found.append(entry)
    return found


def resolve(registries: Sequence[Registry], name: str, wanted: str = "") -> tuple[Registry, str]:
    """The registry and newest version of ``name`` that ``wanted`` (a version or range) allows;
    the first registry listing a match wins. A registry that cannot be read is skipped when
    another has a match; otherwise the error names it."""
    try:
        allowed = parse_range(wanted)
    except RangeError as exc:
        raise InvalidArgument.field("version", str(exc), reason="INVALID_VERSION_RANGE") from None
    if not registries:
        raise FailedPrecondition("no plugin registry is configured (plugin_registries)", reason="NO_PLUGIN_REGISTRY")
    listed: list[str] = []
    unreachable: list[Unreachable] = []
    for registry in registries:
        for entry in _entries(registry, unreachable):
            if entry.name != name:
                continue
            listed += entry.versions
            best = allowed.best(entry.versions)
            if best is not None:
                return registry, best
    down = ""
    if unreachable:
        names = ", ".join(u.registry for u in unreachable)
        if len(unreachable) == len(registries):
            raise Unavailable(
                f"no plugin registry could be read: {unreachable_text(unreachable)}",
                reason="PLUGIN_REGISTRY_UNREACHABLE",
            )
        down = f"; unreachable, not searched: {names} ({unreachable_text(unreachable)})"
    if not listed:
        raise NotFound(
            f"no configured registry has a plugin named {name!r}{down}",
            reason="PLUGIN_NOT_FOUND",
            metadata={"unreachable_registries": ",".join(u.registry for u in unreachable)} if unreachable else None,
        )
    raise FailedPrecondition(
        f"no version of {name} satisfies {allowed} (available: {', '.join(sorted(set(listed)))}){down}",
        reason="PLUGIN_VERSION_UNSATISFIED",
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def publish(plugin_dir: Path, registry_dir: Path) -> dict[str, Any]:
    """Copy the built, signed plugin in ``plugin_dir`` into the folder registry ``registry_dir``
    (created) and list it in its ``index.json``. Returns the index entry of that version.
    Publishing the same version again with other content is refused."""
    manifest: Manifest = read_manifest(plugin_dir)
    artifact_path = plugin_dir / manifest.artifact_file
    if not artifact_path.is_file():
        raise FailedPrecondition(f"{artifact_path} is missing: run `neoactions plugins build {plugin_dir}` first")
    data = artifact_path.read_bytes()
    if sha256(data) != manifest.artifact_sha256:
        raise FailedPrecondition(f"{artifact_path} does not match the manifest's sha256: build and sign again")
    if manifest.signature is None:
        raise FailedPrecondition(f"{plugin_dir / MANIFEST_FILE} is not signed: run `neoactions plugins sign` first")
    registry_dir.mkdir(parents=True, exist_ok=True)
    index_path = registry_dir / INDEX_FILE
    index: dict[str, Any] = {"format": INDEX_FORMAT, "plugins": {}}
    if index_path.exists():
        index = json.loads(index_path.read_text("utf-8"))
    plugin = index["plugins"].setdefault(manifest.name, {"versions": {}})
    plugin["description"] = manifest.description
    folder = f"{manifest.name}/{manifest.version}"
    previous = plugin["versions"].get(manifest.version)
    if previous is not None and previous.get("sha256") != manifest.artifact_sha256:
        raise FailedPrecondition(
            f"{manifest.name} {manifest.version} is already published with another artifact; bump the version"
        )
    (registry_dir / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact_path, registry_dir / folder / manifest.artifact_file)
    _write_atomic(registry_dir / folder / MANIFEST_JSON, (json.dumps(manifest.document, indent=2) + "\n").encode())
    entry = {
        "manifest": f"{folder}/{MANIFEST_JSON}",
        "artifact": f"{folder}/{manifest.artifact_file}",
        "sha256": manifest.artifact_sha256,
        "kind": manifest.kind,
        "handler_types": manifest.type_names(),
    }
    plugin["versions"][manifest.version] = entry
    _write_atomic(index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    return entry


def parse_fetched(fetched: Fetched) -> Manifest:
    return parse_manifest(fetched.document)


__all__ = [
    "INDEX_FILE",
    "INDEX_FORMAT",
    "MANIFEST_JSON",
    "Fetched",
    "Registry",
    "RegistryEntry",
    "Unreachable",
    "parse_fetched",
    "publish",
    "resolve",
    "search",
    "sha256",
    "unreachable_text",
]
