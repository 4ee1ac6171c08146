"""The server's TLS files are checked at start: each mistake stops it with one line naming the
setting (real certificates, made here)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from neoactions.server.settings import Settings
from neoactions.server.startup import StartupError
from neoactions.server.tls import describe, server_credentials
from tests.tls_certs import CertificateAuthority


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


def test_no_certificate_is_plaintext() -> None:
    assert server_credentials(Settings()) is None
    assert describe(Settings()) == "plaintext"


def test_a_certificate_and_its_key_make_tls_and_a_client_ca_mutual_tls(ca: CertificateAuthority) -> None:
    server = ca.issue("server", server=True)
    tls = Settings(tls_cert=str(server.cert), tls_key=str(server.key))
    assert isinstance(server_credentials(tls), grpc.ServerCredentials)
    assert describe(tls) == "TLS"
    mutual = Settings(tls_cert=str(server.cert), tls_key=str(server.key), tls_client_ca=str(ca.pem))
    assert isinstance(server_credentials(mutual), grpc.ServerCredentials)
    assert describe(mutual) == "mutual TLS"


@pytest.mark.parametrize(
    "mistake", ["missing cert", "cert not PEM", "key of another cert", "key not PEM", "ca not PEM"]
)
def test_each_mistake_stops_the_start_naming_the_setting(
    ca: CertificateAuthority, tmp_path: Path, mistake: str
) -> None:
    server, other = ca.issue("server", server=True), ca.issue("other", server=True)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cert, key, client_ca = str(server.cert), str(server.key), ""
    named = {
        "missing cert": "tls_cert",
        "cert not PEM": "tls_cert",
        "key of another cert": "tls_key",
        "key not PEM": "tls_key",
        "ca not PEM": "tls_client_ca",
    }[mistake]
    if mistake == "missing cert":
        cert = str(tmp_path / "absent.pem")
    elif mistake == "cert not PEM":
        cert = str(junk)
    elif mistake == "key of another cert":
        key = str(other.key)
    elif mistake == "key not PEM":
        key = str(junk)
    else:
        client_ca = str(junk)
    with pytest.raises(StartupError) as stopped:
        server_credentials(Settings(tls_cert=cert, tls_key=key, tls_client_ca=client_ca))
    line = str(stopped.value)
    assert f"{named} " in line and "\n" not in line and "hint" in line
