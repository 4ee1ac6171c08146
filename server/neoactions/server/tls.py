"""TLS for the gRPC port: the server credentials of ``tls_cert`` / ``tls_key`` / ``tls_client_ca``.

Without ``tls_cert`` the port is plaintext (a local embedded server). With it, only TLS
is spoken; with ``tls_client_ca`` too, a client must present a certificate signed by that
CA (mutual TLS) or its connection is refused in the handshake. The files are read and
checked once, at start, so a wrong path, a file that is not PEM or a key that does not
belong to the certificate stops the server with one line saying which setting is wrong.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from neoactions.server.settings import Settings
from neoactions.server.startup import StartupError

_HINT = " (hint: see docs/security.md, TLS)"


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise StartupError(f"cannot read {setting} {path}: {exc.strerror or exc}{_HINT}") from None


def _certificates(pem: bytes, setting: str, path: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certificates = []
    if not certificates:
        raise StartupError(f"{setting} {path} holds no PEM certificate{_HINT}")
    return certificates


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The port's TLS credentials, or ``None`` for plaintext (no ``tls_cert``); ``StartupError``
    naming the setting when a file cannot be read or does not fit."""
    if not settings.tls_cert:
        return None
    chain = _read(settings.tls_cert, "tls_cert")
    key = _read(settings.tls_key, "tls_key")
    leaf = _certificates(chain, "tls_cert", settings.tls_cert)[0]
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise StartupError(f"tls_key {settings.tls_key} is not an unencrypted PEM private key ({exc}){_HINT}") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private_key.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(der, public):
        raise StartupError(f"tls_key {settings.tls_key} is not the key of the certificate in tls_cert{_HINT}")
    client_ca = None
    if settings.tls_client_ca:
        client_ca = _read(settings.tls_client_ca, "tls_client_ca")
        _certificates(client_ca, "tls_client_ca", settings.tls_client_ca)
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def describe(settings: Settings) -> str:
    """How the port is protected, for the start-up log line."""
    if not settings.tls_cert:
        return "plaintext"
    return "mutual TLS" if settings.tls_client_ca else "TLS"


__all__ = ["describe", "server_credentials"]
