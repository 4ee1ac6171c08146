"""Removing what a plugin version left on this machine once no installed version uses it.

Per artifact digest, each process may have written: a python-sidecar virtual environment
(``<data_dir>/plugins/venvs/<sha256>/``), a container image archive
(``<data_dir>/plugins/images/<sha256>.tar``) and the image ``docker load`` made of it,
removed by the image id the archive names (its config digest); an image already gone is
fine, and one a running container still uses stays (logged). A wasm plugin's module, when it
is not JavaScript, stays in the wasm runner's content-addressed module folder: an action may
name the same module directly. The stored artifact row is the
store's to remove (``delete_plugin``). Every step is best effort: a failure is logged, never
raised, since the version is already uninstalled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from neoactions.server.runners import HandlerRegistry

log = logging.getLogger(__name__)


def data_dir(registry: HandlerRegistry) -> Path:
    return Path(str(registry.settings.get("data_dir") or Path(tempfile.gettempdir()) / "neoactions"))


def archive_image(path: Path) -> tuple[str, list[str]]:
    """The id (``sha256:...``) and tags of the image a ``docker save`` archive holds;
    ("", []) when unreadable."""
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                return "", []
            entries = json.loads(member.read())
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError):
        return "", []
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return "", []
    config = str(entries[0].get("Config", ""))
    digest = config.rsplit("/", 1)[-1].removesuffix(".json")
    tags = [str(t) for t in entries[0].get("RepoTags") or ()]
    return (f"sha256:{digest}" if len(digest) == 64 else ""), tags


def archive_image_id(path: Path) -> str:
    return archive_image(path)[0]


def _remove_image(engine: Any, image_id: str, tags: list[str]) -> str:
    """Untag the archive's tags, then remove the image by id: an image another plugin's
    archive also tagged (the same build) stays, refused by Docker as still referenced."""
    import docker  # the container runner's dependency: only present where it is

    for tag in tags:
        try:
            if engine.api.inspect_image(tag).get("Id") == image_id:
                engine.api.remove_image(tag)
        except docker.errors.NotFound:
            pass
    try:
        engine.api.remove_image(image_id)
    except docker.errors.NotFound:
        return "gone"
    return "removed"


async def remove_local(registry: HandlerRegistry, kind: str, sha256: str) -> list[str]:
    """Remove this process's files (and loaded image) of the artifact ``sha256``; returns what
    was removed, for the log and tests."""
    removed: list[str] = []
    base = data_dir(registry) / "plugins"
    try:
        if kind == "python-sidecar":
            venv = base / "venvs" / sha256
            if venv.exists():
                await asyncio.to_thread(shutil.rmtree, venv, True)
                removed.append(str(venv))
        elif kind == "container":
            archive = base / "images" / f"{sha256}.tar"
            image_id, tags = await asyncio.to_thread(archive_image, archive) if archive.is_file() else ("", [])
            runner = registry.get("container", version="").runner if "container" in registry else None
            engine = getattr(runner, "engine", None)
            if image_id and engine is not None:
                try:
                    outcome = await engine.call(_remove_image, engine, image_id, tags)
                except Exception as exc:  # in use, or Docker down: the image stays
                    log.warning("plugin image %s not removed: %s", image_id, exc)
                else:
                    if outcome == "removed":
                        removed.append(image_id)
            if archive.is_file():
                archive.unlink(missing_ok=True)
                removed.append(str(archive))
    except OSError as exc:
        log.warning("files of plugin artifact %s not all removed: %s", sha256, exc)
    if removed:
        log.info("removed the local files of plugin artifact %s: %s", sha256, ", ".join(removed))
    return removed


__all__ = ["archive_image", "archive_image_id", "data_dir", "remove_local"]
