"""TLS for the clients: the channel credentials of ``tls_ca`` / ``tls_cert`` / ``tls_key``.

A client speaks TLS when any of them is given: ``tls_ca`` is the CA that signed the
server's certificate (the system's roots without it); ``tls_cert`` and ``tls_key`` are the
client's own certificate and key, for a server that requires mutual TLS. Each is a path
to a PEM file, or the PEM bytes themselves.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from neoactions.domain.errors import InvalidArgument

#: a PEM file's path, or its bytes
PemSource = str | Path | bytes


def _pem(source: PemSource | None, option: str) -> bytes | None:
    if source is None or source == "":
        return None
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidArgument.field(option, f"cannot read {source}: {exc.strerror or exc}") from None


def channel_credentials(
    tls_ca: PemSource | None = None, tls_cert: PemSource | None = None, tls_key: PemSource | None = None
) -> grpc.ChannelCredentials | None:
    """The credentials of a TLS channel, or ``None`` (plaintext) when none of the three is given."""
    ca, cert, key = _pem(tls_ca, "tls_ca"), _pem(tls_cert, "tls_cert"), _pem(tls_key, "tls_key")
    if ca is None and cert is None and key is None:
        return None
    if (cert is None) != (key is None):
        missing = "tls_key" if key is None else "tls_cert"
        raise InvalidArgument.field(missing, "a client certificate needs both tls_cert and tls_key")
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


__all__ = ["PemSource", "channel_credentials"]
