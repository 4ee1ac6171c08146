"""Sealing secret values with AES-256-GCM under a master key, and the master keys themselves.

A sealed value is ``b"nas1" | key id (8 ASCII hex) | nonce (12) | ciphertext + tag``. The
key id is the first 8 hex digits of the SHA-256 of the key, so a value says which key
sealed it: during a master-key rotation the previous key still opens what it sealed
while everything new is sealed under the current one. The tenant and the secret's name
are the associated data: a sealed value copied to another name or tenant does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets as _random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
MAGIC = b"nas1"
_KEY_ID_CHARS = 8
_HEADER = len(MAGIC) + _KEY_ID_CHARS


class MasterKeyError(ValueError):
    """A master key is missing, malformed, or does not open a sealed value."""


def key_id(key: bytes) -> str:
    """The first 8 hex digits of the key's SHA-256: names the key, reveals nothing of it."""
    return hashlib.sha256(key).hexdigest()[:_KEY_ID_CHARS]


def new_key() -> bytes:
    """32 random bytes: a fresh master key."""
    return _random.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """A key as it is written in settings and key files: standard base64."""
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str | bytes, where: str = "master key") -> bytes:
    """A base64 key (surrounding whitespace ignored); ``MasterKeyError`` naming ``where``."""
    raw = text.strip() if isinstance(text, bytes) else text.strip().encode("ascii", "replace")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{where}: not base64 (expected base64 of {KEY_BYTES} random bytes)") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{where}: {len(key)} bytes, expected base64 of {KEY_BYTES} random bytes")
    return key


def read_key_file(path: Path) -> bytes:
    try:
        return decode_key(path.read_bytes(), str(path))
    except OSError as exc:
        raise MasterKeyError(f"{path}: cannot read the master key file: {exc.strerror}") from None


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` (mode 0600), replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (encode_key(key) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def sealed_key_id(sealed: bytes) -> str:
    """The id of the key that sealed ``sealed`` ('' when it is not a sealed value)."""
    if len(sealed) < _HEADER or not sealed.startswith(MAGIC):
        return ""
    return sealed[len(MAGIC) : _HEADER].decode("ascii", "replace")


def _aad(tenant: str, name: str) -> bytes:
    return f"{tenant}\x00{name}".encode()


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current master key (seals) and previous ones (still open what they sealed)."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for key in (self.current, *self.previous):
            if len(key) != KEY_BYTES:
                raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes")

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def ids(self) -> list[str]:
        return [key_id(k) for k in (self.current, *self.previous)]

    def rotated_to(self, new: bytes) -> Keyring:
        """This keyring with ``new`` current and every key it knew as previous."""
        kept = [k for k in (self.current, *self.previous) if k != new]
        return Keyring(new, tuple(dict.fromkeys(kept)))

    def seal(self, tenant: str, name: str, value: str) -> bytes:
        nonce = _random.token_bytes(NONCE_BYTES)
        body = AESGCM(self.current).encrypt(nonce, value.encode("utf-8"), _aad(tenant, name))
        return MAGIC + self.current_id.encode("ascii") + nonce + body

    def open(self, tenant: str, name: str, sealed: bytes) -> str:
        """The value ``sealed`` holds; ``MasterKeyError`` when no key of this keyring opens it."""
        wanted = sealed_key_id(sealed)
        if not wanted:
            raise MasterKeyError(f"secret {name!r}: the stored value is not a sealed secret")
        key = next((k for k in (self.current, *self.previous) if key_id(k) == wanted), None)
        if key is None:
            raise MasterKeyError(
                f"secret {name!r} is sealed under master key {wanted}, which this server does not have"
                f" (it has {', '.join(self.ids())}); configure it as master_key_previous"
            )
        nonce, body = sealed[_HEADER : _HEADER + NONCE_BYTES], sealed[_HEADER + NONCE_BYTES :]
        try:
            return AESGCM(key).decrypt(nonce, body, _aad(tenant, name)).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise MasterKeyError(f"secret {name!r}: the stored value does not open (altered, or moved)") from None

    def needs_reseal(self, sealed: bytes) -> bool:
        return sealed_key_id(sealed) != self.current_id


def previous_keys(values: Iterable[str], where: str = "master_key_previous") -> tuple[bytes, ...]:
    """Keys given as base64 text, or as paths of key files, comma-separated."""
    out: list[bytes] = []
    for part in values:
        part = part.strip()
        if not part:
            continue
        # a file's path, else the key itself (base64 has '/' too: only an existing file is a path)
        out.append(read_key_file(Path(part)) if os.path.isfile(part) else decode_key(part, where))
    return tuple(out)


__all__ = [
    "KEY_BYTES",
    "Keyring",
    "MasterKeyError",
    "decode_key",
    "encode_key",
    "key_id",
    "new_key",
    "previous_keys",
    "read_key_file",
    "sealed_key_id",
    "write_key_file",
]
