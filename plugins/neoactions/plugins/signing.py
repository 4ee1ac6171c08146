"""Ed25519 signatures of plugin manifests.

An author keeps ``plugin-signing.key`` (PKCS#8 PEM, private) and hands out
``plugin-signing.pub`` (SubjectPublicKeyInfo PEM); an operator lists the public files it
trusts. A key is named by its id: the first 16 hex digits of the sha256 of its raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.plugins.manifest import canonical_bytes

PRIVATE_FILE = "plugin-signing.key"
PUBLIC_FILE = "plugin-signing.pub"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def keygen(out: Path) -> tuple[Path, Path]:
    """Write a new key pair into ``out`` (created); refuses to overwrite a private key."""
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_FILE, out / PUBLIC_FILE
    if private_path.exists():
        raise FailedPrecondition(f"{private_path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_path.touch(mode=0o600)
    private_path.write_bytes(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidArgument.field("key", f"{path} is not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument.field("key", f"{path} is not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidArgument.field("trusted_plugin_keys", f"{path} is not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgument.field("trusted_plugin_keys", f"{path} is not an Ed25519 public key")
    return key


def sign(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``document`` with its ``signature`` (replacing any earlier one)."""
    value = base64.b64encode(key.sign(canonical_bytes(document))).decode("ascii")
    signed = {k: v for k, v in document.items() if k != "signature"}
    signed["signature"] = {"algorithm": "ed25519", "key_id": key_id(key.public_key()), "value": value}
    return signed


@dataclass(frozen=True, slots=True)
class TrustedKeys:
    """The public keys an operator trusts, by id."""

    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> TrustedKeys:
        keys = {}
        for p in paths:
            public = load_public(Path(p))
            keys[key_id(public)] = public
        return cls(keys)

    def verify(self, document: Mapping[str, Any]) -> str:
        """The id of the trusted key that signed ``document``; ``FailedPrecondition``
        (PLUGIN_UNSIGNED, PLUGIN_UNTRUSTED_KEY, PLUGIN_BAD_SIGNATURE) otherwise."""
        sig = document.get("signature")
        if not isinstance(sig, Mapping):
            raise FailedPrecondition(
                "the plugin manifest is not signed (the operator may set allow_unsigned_plugins)",
                reason="PLUGIN_UNSIGNED",
            )
        kid = str(sig.get("key_id", ""))
        public = self.keys.get(kid)
        if public is None:
            raise FailedPrecondition(
                f"the plugin manifest is signed by key {kid}, which this server does not trust"
                " (add its public key file to trusted_plugin_keys)",
                reason="PLUGIN_UNTRUSTED_KEY",
                metadata={"key_id": kid},
            )
        try:
            public.verify(base64.b64decode(str(sig.get("value", "")), validate=True), canonical_bytes(document))
        except (InvalidSignature, binascii.Error, ValueError):
            raise FailedPrecondition(
                f"the plugin manifest's signature by key {kid} does not match its content (tampered?)",
                reason="PLUGIN_BAD_SIGNATURE",
            ) from None
        return kid


__all__ = ["PRIVATE_FILE", "PUBLIC_FILE", "TrustedKeys", "key_id", "keygen", "load_private", "load_public", "sign"]
