"""The email runner against a real aiosmtpd server on loopback: plain, STARTTLS + AUTH, TLS.

The TLS certificate is self-signed, made here with ``cryptography``, and
trusted through the config's ``ca_cert`` as an operator with a private CA would.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import utcnow
from neoactions.sandboxes.email import EmailRunner, register
from neoactions.sandboxes.http import AddressPolicy
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Log, Result

USER, PASSWORD = "mailer", "correct horse"


@dataclass
class Delivered:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Inbox:
    """An aiosmtpd handler keeping what it accepted; refuses some recipients like a real server."""

    delivered: list[Delivered] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.delivered.append(
            Delivered(str(envelope.mail_from), list(envelope.rcpt_tos), message, _encrypted(server), login)
        )
        return "250 2.0.0 queued as 1234"


def _encrypted(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A self-signed certificate for 127.0.0.1 and mail.example.test: (cert file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "neoactions test SMTP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("mail.example.test")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem", pem.decode()


def server_context(certificate: tuple[Path, Path, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path, str]) -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(certificate),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail (instead of connecting) if the runner opens a socket to anything but loopback."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not ipaddress.ip_address(address[0]).is_loopback:
            pytest.fail(f"the runner tried to connect to {address[0]}")
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def runner() -> EmailRunner:
    return EmailRunner(AddressPolicy.from_networks(["127.0.0.0/8", "::1/128"]), local_hostname="runner.test")


def make_ctx(seconds: float = 10.0) -> ExecutionContext:
    return ExecutionContext(
        tenant="acme",
        execution_id="exec-5",
        action_name="welcome-mail",
        action_version=2,
        attempt=1,
        idempotency_key="01J9ZK-welcome/7",
        deadline=utcnow() + timedelta(seconds=seconds),
    )


async def run(runner: EmailRunner, config: dict[str, Any]) -> tuple[Result | Failure, list[Log]]:
    updates = [u async for u in runner.execute(config, {"ignored": True}, make_ctx())]
    final = updates[-1]
    assert isinstance(final, Result | Failure)
    return final, [u for u in updates if isinstance(u, Log)]


def mail(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "Shop <shop@example.com>",
        "to": ["Ada <ada@example.com>", "bob@example.com"],
        "cc": "carol@example.com",
        "bcc": ["audit@example.com"],
        "reply_to": "support@example.com",
        "subject": "Welcome, Ada — order #42",
        "text": "Hello Ada,\nthanks for order 42.",
        "html": "<p>Hello <b>Ada</b>, thanks for order 42.</p>",
        "headers": {"X-Campaign": "welcome"},
        **extra,
    }


async def test_plain_smtp_message_and_envelope(runner: EmailRunner, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    outcome, _ = await run(runner, mail(port))
    assert isinstance(outcome, Result), outcome
    assert outcome.output["message_id"] == "<01J9ZK-welcome-7@example.com>"
    assert outcome.output["refused"] == {}
    [got] = inbox.delivered
    assert got.sender == "shop@example.com"
    assert got.recipients == ["ada@example.com", "bob@example.com", "carol@example.com", "audit@example.com"]
    message = got.message
    assert message["From"] == "Shop <shop@example.com>"
    assert message["To"] == "Ada <ada@example.com>, bob@example.com"
    assert message["Cc"] == "carol@example.com"
    assert message["Reply-To"] == "support@example.com"
    assert message["Subject"] == "Welcome, Ada — order #42"
    assert message["Message-ID"] == "<01J9ZK-welcome-7@example.com>"
    assert message["X-Campaign"] == "welcome"
    assert message["Bcc"] is None and b"audit@" not in message.as_bytes()  # bcc: envelope only
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    # SMTP carries CRLF line ends; compare the text itself
    assert text.get_content().replace("\r\n", "\n") == "Hello Ada,\nthanks for order 42.\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Hello <b>Ada</b>, thanks for order 42.</p>\n"
    assert not got.tls


async def test_starttls_with_auth(
    runner: EmailRunner, starttls_server: tuple[Inbox, int], certificate: tuple[Path, Path, str]
) -> None:
    inbox, port = starttls_server
    secure = {"security": "starttls", "ca_cert": certificate[2], "username": USER}
    outcome, _ = await run(runner, mail(port, **secure, password=PASSWORD, html=None) | {"html": "<p>hi</p>"})
    assert isinstance(outcome, Result), outcome
    [got] = inbox.delivered
    assert got.tls and got.login == USER.encode()
    assert "audit@example.com" in got.recipients

    wrong, _ = await run(runner, mail(port, **secure, password="wrong"))
    assert isinstance(wrong, Failure)
    assert wrong.error.type == "smtp_error" and not wrong.error.retryable
    assert "535" in wrong.error.message

    # the server requires STARTTLS: sending in the clear is refused before any mail
    clear, _ = await run(runner, mail(port, security="none"))
    assert isinstance(clear, Failure) and not clear.error.retryable
    assert "530" in clear.error.message
    assert len(inbox.delivered) == 1


async def test_starttls_keeps_host_name_for_certificate_check(
    runner: EmailRunner,
    starttls_server: tuple[Inbox, int],
    certificate: tuple[Path, Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = starttls_server
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "mail.example.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    config = mail(port, host="mail.example.test", security="starttls", ca_cert=certificate[2])
    outcome, _ = await run(runner, config | {"username": USER, "password": PASSWORD})
    assert isinstance(outcome, Result), outcome
    assert inbox.delivered[0].tls


async def test_untrusted_certificate_is_refused(runner: EmailRunner, starttls_server: tuple[Inbox, int]) -> None:
    inbox, port = starttls_server
    outcome, _ = await run(runner, mail(port, security="starttls", username=USER, password=PASSWORD))
    assert isinstance(outcome, Failure), outcome
    assert (outcome.error.type, outcome.error.retryable) == ("smtp_tls_error", False)
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.error.message
    assert inbox.delivered == []


async def test_implicit_tls(runner: EmailRunner, certificate: tuple[Path, Path, str]) -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=server_context(certificate))
    controller.start()
    try:
        outcome, _ = await run(runner, mail(port, security="tls", ca_cert=certificate[2]))
    finally:
        controller.stop()
    assert isinstance(outcome, Result), outcome
    assert inbox.delivered[0].tls


async def test_recipient_refusals(runner: EmailRunner, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    some, logs = await run(runner, mail(port, to=["ada@example.com", "nobody@example.com"], cc=[], bcc=[]))
    assert isinstance(some, Result)
    assert some.output["accepted"] == ["ada@example.com"]
    assert some.output["refused"]["nobody@example.com"].startswith("550")
    assert any("nobody@example.com" in log.message for log in logs)
    assert inbox.delivered[0].recipients == ["ada@example.com"]

    busy, _ = await run(runner, mail(port, to=["busy@example.com"], cc=[], bcc=[]))
    assert isinstance(busy, Failure)
    assert (busy.error.type, busy.error.retryable) == ("smtp_recipients_refused", True)
    gone, _ = await run(runner, mail(port, to=["nobody@example.com"], cc=[], bcc=[]))
    assert isinstance(gone, Failure) and not gone.error.retryable


async def test_failures_before_sending(runner: EmailRunner) -> None:
    injected, _ = await run(runner, mail(free_port(), subject="hi\r\nBcc: victim@example.com"))
    assert isinstance(injected, Failure) and injected.error.type == "invalid_config"
    refused, _ = await run(runner, mail(25, host="10.0.0.1"))
    assert isinstance(refused, Failure)
    assert (refused.error.type, refused.error.message) == ("ssrf_refused", "refused: 10.0.0.1 is a private address")
    down, _ = await run(runner, mail(free_port()))
    assert isinstance(down, Failure)
    assert (down.error.type, down.error.retryable) == ("smtp_connection_error", True)


def test_config_validation() -> None:
    registry = HandlerRegistry()
    register(registry)
    handler = registry.get("email")
    handler.check_config({"host": "smtp.test", "from": "a@b.c", "to": "{{ data.email }}", "subject": "s", "text": "t"})
    bad_configs: list[tuple[dict[str, Any], str]] = [
        ({"host": "h", "from": "a@b.c", "to": "x@y.z", "subject": "s"}, "handler.config"),  # no body
        (
            {"host": "h", "from": "a@b.c", "to": "x@y.z", "subject": "s", "text": "t", "security": "ssl"},
            "handler.config.security",
        ),
        ({"host": "h", "from": "nobody", "to": "x@y.z", "subject": "s", "text": "t"}, "handler.config.from"),
        (
            {"host": "h", "from": "a@b.c", "to": "x@y.z", "subject": "s", "text": "t", "headers": {"Bcc": "z@z.z"}},
            "handler.config.headers.Bcc",
        ),
    ]
    for bad, path in bad_configs:
        with pytest.raises(InvalidArgument) as info:
            handler.check_config(bad)
        assert info.value.violations[0].field == path
