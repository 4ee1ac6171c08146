"""Build the example plugin registry: every plugin under ``sources/``, built, signed and
published into a folder registry (``make plugins-registry`` writes ``plugins/registry/build``).

    python plugins/registry/build.py OUT [--keys DIR] [--kinds wasm,python-sidecar,container]

The signing key is ``DIR/plugin-signing.key`` (default ``OUT/keys``), made when missing;
an operator trusts ``plugin-signing.pub`` beside it (``NEOACTIONS_TRUSTED_PLUGIN_KEYS``).
A container plugin's ``handler.c`` is compiled with ``gcc -static`` first; container
plugins are left out, with a note, where Docker or gcc is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from neoactions.plugins import authoring, registry, signing
from neoactions.plugins.manifest import KINDS, read_manifest

SOURCES = Path(__file__).resolve().parent / "sources"


def _docker_works() -> bool:
    if shutil.which("gcc") is None or shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def build(out: Path, keys: Path | None = None, kinds: Sequence[str] = KINDS) -> tuple[Path, Path]:
    """Build the examples of ``kinds`` into the folder registry ``out``; returns it and the public key file."""
    keys = keys or out / "keys"
    if not (keys / signing.PRIVATE_FILE).exists():
        signing.keygen(keys)
    docker = None
    with tempfile.TemporaryDirectory(prefix="neoactions-registry-") as work:
        for source in sorted(p for p in SOURCES.iterdir() if p.is_dir()):
            kind = read_manifest(source).kind if (source / "neoactions-plugin.yaml").exists() else ""
            if kind not in kinds:
                continue
            if kind == "container":
                docker = _docker_works() if docker is None else docker
                if not docker:
                    print(f"left out {source.name}: container plugins need Docker and gcc", file=sys.stderr)
                    continue
            plugin = Path(work) / source.name
            shutil.copytree(source, plugin)
            if (plugin / "handler.c").exists():
                subprocess.run(
                    ["gcc", "-static", "-O2", "-o", str(plugin / "handler"), str(plugin / "handler.c")],
                    check=True,
                    capture_output=True,
                )
            authoring.build(plugin)
            authoring.sign_plugin(plugin, keys / signing.PRIVATE_FILE)
            registry.publish(plugin, out)
    return out, keys / signing.PUBLIC_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--keys", type=Path, default=None)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    out, public = build(args.out, args.keys, [k.strip() for k in args.kinds.split(",") if k.strip()])
    print(f"registry: {out}\ntrust:    {public}")


if __name__ == "__main__":
    main()
