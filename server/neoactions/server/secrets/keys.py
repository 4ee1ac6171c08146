"""Where the master key comes from: a setting, a key file, or (embedded) the data directory.

``master_key`` (``NEOACTIONS_MASTER_KEY``, base64 of 32 bytes) wins over ``master_key_file``;
with neither, the embedded store keeps a generated key in ``<data_dir>/master.key`` (mode
0600), made the first time it is needed. A PostgreSQL deployment must configure one: its
processes share the database, so they must share the key. ``master_key_previous`` lists
keys (base64, or key files) that still open what they sealed during a rotation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from neoactions.server.secrets.crypto import (
    Keyring,
    MasterKeyError,
    decode_key,
    new_key,
    previous_keys,
    read_key_file,
    write_key_file,
)
from neoactions.server.settings import Settings

log = logging.getLogger(__name__)

GENERATED_KEY_FILE = "master.key"


@dataclass(frozen=True, slots=True)
class KeySource:
    """The keyring and the file the current key lives in (``None``: a setting holds it)."""

    keyring: Keyring
    file: Path | None


def load_keys(settings: Settings) -> KeySource:
    """The configured master keys; generates the embedded store's key file if it has none.
    ``MasterKeyError`` when none is configured for PostgreSQL, or one is malformed."""
    previous = previous_keys(settings.master_key_previous)
    if settings.master_key:
        return KeySource(Keyring(decode_key(settings.master_key, "master_key"), previous), None)
    if settings.master_key_file:
        path = Path(settings.master_key_file)
        return KeySource(Keyring(read_key_file(path), previous), path)
    if settings.database_url:
        raise MasterKeyError(
            "no master key: set NEOACTIONS_MASTER_KEY (base64 of 32 random bytes) or master_key_file"
            " to use secrets with PostgreSQL"
        )
    path = settings.data_dir / GENERATED_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_key_file(path, new_key())
        log.info("generated a master key for secrets at %s (mode 0600); back it up with the data", path)
    return KeySource(Keyring(read_key_file(path), previous), path)


__all__ = ["GENERATED_KEY_FILE", "KeySource", "MasterKeyError", "load_keys"]
