"""TLS and mutual TLS on a real server's gRPC port, with real certificates made here, and
the server's maximum message size. The transport does not touch the store: the embedded one
serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from neoactions.client import AsyncClient, ResourceExhausted, Unavailable
from neoactions.client._tls import channel_credentials
from neoactions.client.cli import app
from tests.e2e.conftest import ServerProcess, module_server
from tests.tls_certs import CertificateAuthority, Issued

MAX_MESSAGE = 64 * 1024


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = CertificateAuthority(folder)
        self.server = self.ca.issue("server", server=True)
        self.client = self.ca.issue("client", server=False)
        stranger = CertificateAuthority(folder, "another CA")
        self.stranger_client = stranger.issue("stranger", server=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "NEOACTIONS_TLS_CERT": str(pki.server.cert),
        "NEOACTIONS_TLS_KEY": str(pki.server.key),
        "NEOACTIONS_MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
    }
    with module_server("sqlite", tmp_path_factory.mktemp("tls"), env) as proc:
        yield proc


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "NEOACTIONS_TLS_CERT": str(pki.server.cert),
        "NEOACTIONS_TLS_KEY": str(pki.server.key),
        "NEOACTIONS_TLS_CLIENT_CA": str(pki.ca.pem),
    }
    with module_server("sqlite", tmp_path_factory.mktemp("mtls"), env) as proc:
        yield proc


async def _health(target: str, credentials: grpc.ChannelCredentials | None, service: str = "") -> int:
    channel = (
        grpc.aio.secure_channel(target, credentials) if credentials is not None else grpc.aio.insecure_channel(target)
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return int(response.status)


async def test_a_client_trusting_the_ca_talks_tls(tls_server: ServerProcess, pki: Pki) -> None:
    assert await _health(tls_server.target, channel_credentials(pki.ca.pem)) == health_pb2.HealthCheckResponse.SERVING
    async with AsyncClient(tls_server.target, tls_ca=pki.ca.pem, timeout=10) as client:
        tenants = [t.slug for t in (await client.list_tenants()).items]
    assert "admin" in tenants


async def test_a_plaintext_client_is_refused(tls_server: ServerProcess) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(tls_server.target, None)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    async with AsyncClient(tls_server.target, timeout=10) as client:
        with pytest.raises(Unavailable):
            await client.list_tenants()


async def test_a_client_that_does_not_trust_the_servers_ca_is_refused(tls_server: ServerProcess, pki: Pki) -> None:
    # the other CA did not sign the server's certificate: the handshake fails on the client
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(tls_server.target, channel_credentials(pki.stranger_client.cert))
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_message_over_max_message_bytes_is_refused(tls_server: ServerProcess, pki: Pki) -> None:
    credentials = channel_credentials(pki.ca.pem)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(tls_server.target, credentials, service="x" * (MAX_MESSAGE + 1))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    # just under the limit passes the transport (the health service then knows no such service)
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await _health(tls_server.target, credentials, service="x" * (MAX_MESSAGE - 64))
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    async with AsyncClient(tls_server.target, tls_ca=pki.ca.pem, timeout=10) as client:
        with pytest.raises(ResourceExhausted):
            await client.publish("orders.created", {"blob": "x" * MAX_MESSAGE})


async def test_mutual_tls_admits_a_client_certificate_of_the_ca(mtls_server: ServerProcess, pki: Pki) -> None:
    credentials = channel_credentials(pki.ca.pem, pki.client.cert, pki.client.key)
    assert await _health(mtls_server.target, credentials) == health_pb2.HealthCheckResponse.SERVING
    async with AsyncClient(
        mtls_server.target, tls_ca=pki.ca.pem, tls_cert=pki.client.cert, tls_key=pki.client.key, timeout=10
    ) as client:
        assert "admin" in [t.slug for t in (await client.list_tenants()).items]


@pytest.mark.parametrize("client_cert", ["none", "another CA's"])
async def test_mutual_tls_refuses_a_client_without_a_certificate_of_the_ca(
    mtls_server: ServerProcess, pki: Pki, client_cert: str
) -> None:
    issued: Issued | None = pki.stranger_client if client_cert == "another CA's" else None
    credentials = channel_credentials(pki.ca.pem, issued.cert if issued else None, issued.key if issued else None)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(mtls_server.target, credentials)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_the_cli_speaks_mutual_tls_from_its_options_and_environment(mtls_server: ServerProcess, pki: Pki) -> None:
    runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})
    options = ["--tls-ca", str(pki.ca.pem), "--tls-cert", str(pki.client.cert), "--tls-key", str(pki.client.key)]
    done = runner.invoke(app, ["--server", mtls_server.target, *options, "tenants", "list", "--json"])
    assert done.exit_code == 0, done.output
    assert '"slug": "admin"' in done.output
    # the same from the environment, the options after the command
    env = {"NEOACTIONS_TLS_CA": str(pki.ca.pem), "NEOACTIONS_TLS_CERT": str(pki.client.cert)}
    done = runner.invoke(
        app, ["tenants", "list", "--server", mtls_server.target, "--tls-key", str(pki.client.key)], env=env
    )
    assert done.exit_code == 0, done.output
    # without a client certificate: one line, exit 1
    refused = runner.invoke(app, ["--server", mtls_server.target, "--tls-ca", str(pki.ca.pem), "tenants", "list"])
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "error" in refused.output.lower()
    assert "--tls-cert/--tls-key" in refused.output, "the hint says what to pass"
    # a plaintext CLI at a TLS server: the same hint, not "is the server running?"
    plain = runner.invoke(app, ["--server", mtls_server.target, "tenants", "list"])
    assert plain.exit_code == 1 and "pass --tls-ca" in plain.output
