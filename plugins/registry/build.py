"""Build the example plugin registry: every plugin under ``sources/``, built, signed and
published into a folder registry (``make plugins-registry`` writes ``plugins/registry/build``).

    python plugins/registry/build.py OUT [--keys DIR]

The signing key is ``DIR/plugin-signing.key`` (default ``OUT/keys``), made when missing;
an operator trusts ``plugin-signing.pub`` beside it (``NEOACTIONS_TRUSTED_PLUGIN_KEYS``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from neoactions.plugins import authoring, registry, signing

SOURCES = Path(__file__).resolve().parent / "sources"


def build(out: Path, keys: Path | None = None) -> tuple[Path, Path]:
    """Build every example into the folder registry ``out``; returns it and the public key file."""
    keys = keys or out / "keys"
    if not (keys / signing.PRIVATE_FILE).exists():
        signing.keygen(keys)
    with tempfile.TemporaryDirectory(prefix="neoactions-registry-") as work:
        for source in sorted(p for p in SOURCES.iterdir() if p.is_dir()):
            plugin = Path(work) / source.name
            shutil.copytree(source, plugin)
            authoring.build(plugin)
            authoring.sign_plugin(plugin, keys / signing.PRIVATE_FILE)
            registry.publish(plugin, out)
    return out, keys / signing.PUBLIC_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--keys", type=Path, default=None)
    args = parser.parse_args()
    out, public = build(args.out, args.keys)
    print(f"registry: {out}\ntrust:    {public}")


if __name__ == "__main__":
    main()
