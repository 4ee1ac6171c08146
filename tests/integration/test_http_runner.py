"""The http runner against real HTTP servers on loopback.

Loopback is allow-listed explicitly (127.0.0.0/8 and ::1), as an operator would
for a receiver on the same machine. SSRF tests never connect anywhere: every
connection the runner opens goes through ``loopback_only``, which fails the
test instead of sending a packet to a non-loopback address.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import pytest
from loopback_http import Received, Reply, serve_http
from standardwebhooks import Webhook, WebhookVerificationError

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, utcnow
from neoactions.sandboxes.http import (
    AddressPolicy,
    HttpRunner,
    classify_status,
    parse_retry_after,
    register,
)
from neoactions.sandboxes.http.guard import refusal_reason
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Log, Result

LOOPBACK = ["127.0.0.0/8", "::1/128"]
OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
OTHER_SECRET = "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IGtleQ=="


def make_ctx(seconds: float = 10.0, key: str = "exec-123-key") -> ExecutionContext:
    return ExecutionContext(
        tenant="acme",
        execution_id="exec-123",
        action_name="notify",
        action_version=3,
        attempt=1,
        idempotency_key=key,
        deadline=utcnow() + timedelta(seconds=seconds),
        trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )


async def run(
    runner: HttpRunner, config: dict[str, Any], data: JSON = None, ctx: ExecutionContext | None = None
) -> Result | Failure:
    """The final update of one execute(), checking the contract on the way."""
    updates = [u async for u in runner.execute(config, data, ctx or make_ctx())]
    assert all(isinstance(u, Log) for u in updates[:-1])
    final = updates[-1]
    assert isinstance(final, Result | Failure)
    return final


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every address the runner connects to; refuse (and fail) anything off loopback."""
    original = httpcore.AnyIOBackend.connect_tcp
    seen: list[str] = []

    async def connect_tcp(self: httpcore.AnyIOBackend, host: str, port: int, **kwargs: Any) -> Any:
        seen.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            pytest.fail(f"the runner tried to connect to {host}")
        return await original(self, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return seen


@pytest.fixture
async def runner() -> AsyncIterator[HttpRunner]:
    r = HttpRunner(AddressPolicy.from_networks(LOOPBACK))
    yield r
    await r.aclose()


def verifying(*secrets: str) -> tuple[list[Any], Any]:
    """A responder that verifies deliveries like a Standard Webhooks receiver does."""
    verified: list[Any] = []

    def respond(req: Received) -> Reply:
        for secret in secrets:
            try:
                verified.append(Webhook(secret).verify(req.body, req.headers))
                return Reply(200, b'{"received":true}', {"content-type": "application/json"})
            except WebhookVerificationError:
                continue
        return Reply(401, b"bad signature")

    return verified, respond


# --- webhooks ---------------------------------------------------------------


async def test_webhook_delivered_and_verified(runner: HttpRunner) -> None:
    verified, respond = verifying(OLD_SECRET)
    data = {"user": {"id": 7, "email": "ada@example.com"}, "note": "héllo"}
    with serve_http(respond) as server:
        outcome = await run(runner, {"url": f"{server.url}/hooks", "webhook": {"secrets": [OLD_SECRET]}}, data)
    assert isinstance(outcome, Result), outcome
    assert outcome.output == {
        "status": 200,
        "headers": {"content-type": "application/json", "content-length": "17"},
        "body": {"received": True},
    }
    assert verified == [data]
    got = server.requests[0]
    assert got.method == "POST" and got.path == "/hooks"
    assert got.headers["webhook-id"] == "exec-123-key"
    assert got.headers["idempotency-key"] == "exec-123-key"
    assert got.headers["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 5
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"


async def test_secret_rotation_signs_with_every_secret(runner: HttpRunner) -> None:
    config_secrets = [OLD_SECRET, NEW_SECRET]
    for receiver_secret in config_secrets:  # receivers not yet rotated, and already rotated
        verified, respond = verifying(receiver_secret)
        with serve_http(respond) as server:
            outcome = await run(runner, {"url": server.url, "webhook": {"secrets": config_secrets}}, {"n": 1})
        assert isinstance(outcome, Result), outcome
        assert verified == [{"n": 1}]
        assert len(server.requests[0].headers["webhook-signature"].split(" ")) == 2
    # after the rotation ends (only the new secret), a receiver still on the old one refuses
    _, respond = verifying(OLD_SECRET)
    with serve_http(respond) as server:
        outcome = await run(runner, {"url": server.url, "webhook": {"secrets": NEW_SECRET}}, {"n": 1})
    assert isinstance(outcome, Failure)
    assert (outcome.error.type, outcome.error.retryable) == ("http_401", False)


async def test_receiver_with_another_secret_rejects(runner: HttpRunner) -> None:
    verified, respond = verifying(OTHER_SECRET)
    with serve_http(respond) as server:
        outcome = await run(runner, {"url": server.url, "webhook": {"secrets": [OLD_SECRET]}}, {"x": 1})
    assert isinstance(outcome, Failure) and outcome.error.type == "http_401"
    assert verified == []


async def test_invalid_secret_fails_without_sending(runner: HttpRunner) -> None:
    with serve_http() as server:
        outcome = await run(runner, {"url": server.url, "webhook": {"secrets": ["not-a-secret"]}}, {})
    assert isinstance(outcome, Failure)
    assert outcome.error.type == "invalid_config" and not outcome.error.retryable
    assert "whsec_" in outcome.error.message
    assert server.requests == []


# --- classification -----------------------------------------------------------

CLASSIFICATION = [
    # status, reply headers, expected error type (None = success), retryable, retry_after_ms
    (200, {}, None, None, None),
    (201, {}, None, None, None),
    (204, {}, None, None, None),
    (301, {"location": "/elsewhere"}, "http_301", False, None),
    (400, {}, "http_400", False, None),
    (401, {}, "http_401", False, None),
    (403, {}, "http_403", False, None),
    (404, {}, "http_404", False, None),
    (408, {}, "http_408", True, None),
    (409, {}, "http_409", False, None),
    (410, {}, "http_410", False, None),
    (422, {}, "http_422", False, None),
    (429, {"retry-after": "7"}, "http_429", True, 7000),
    (429, {}, "http_429", True, None),
    (500, {}, "http_500", True, None),
    (502, {}, "http_502", True, None),
    (503, {"retry-after": "120"}, "http_503", True, 120_000),
    (504, {}, "http_504", True, None),
]


@pytest.mark.parametrize(("status", "headers", "error_type", "retryable", "retry_after_ms"), CLASSIFICATION)
async def test_retry_classification(
    runner: HttpRunner,
    status: int,
    headers: dict[str, str],
    error_type: str | None,
    retryable: bool | None,
    retry_after_ms: int | None,
) -> None:
    body = b"" if status == 204 else b"some detail"
    with serve_http(lambda _r: Reply(status, body, headers)) as server:
        outcome = await run(runner, {"url": server.url}, {"a": 1})
    if error_type is None:
        assert isinstance(outcome, Result), outcome
        assert outcome.output["status"] == status
        return
    assert isinstance(outcome, Failure), outcome
    assert outcome.error.type == error_type
    assert outcome.error.retryable is retryable
    assert outcome.error.retry_after_ms == retry_after_ms
    assert str(status) in outcome.error.message and "some detail" in outcome.error.message
    if retry_after_ms is not None:  # survives a store round trip
        assert outcome.error.to_dict()["retry_after_ms"] == retry_after_ms


def test_retry_after_http_date_and_bounds() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30_000
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0  # in the past: retry now
    assert parse_retry_after("99999999", now) == 24 * 3600 * 1000  # capped
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    verdict = classify_status(503, "Thu, 01 Jan 2026 12:01:00 GMT", now)
    assert verdict is not None and verdict.retry_after_ms == 60_000 and verdict.retryable


async def test_retry_after_http_date_from_server(runner: HttpRunner) -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    with serve_http(lambda _r: Reply(503, b"", {"retry-after": header})) as server:
        outcome = await run(runner, {"url": server.url})
    assert isinstance(outcome, Failure) and outcome.error.retry_after_ms is not None
    assert 85_000 <= outcome.error.retry_after_ms <= 90_000


async def test_connection_refused_is_retryable(runner: HttpRunner) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = await run(runner, {"url": f"http://127.0.0.1:{port}/"})
    assert isinstance(outcome, Failure)
    assert (outcome.error.type, outcome.error.retryable) == ("connection_error", True)


async def test_slow_target_times_out(runner: HttpRunner) -> None:
    release = threading.Event()

    def slow(_r: Received) -> Reply:
        release.wait(5)
        return Reply(200)

    with serve_http(slow) as server:
        try:
            started = time.monotonic()
            by_config = await run(runner, {"url": server.url, "timeout_seconds": 0.3})
            by_deadline = await run(runner, {"url": server.url, "timeout_seconds": 30}, ctx=make_ctx(seconds=0.3))
            elapsed = time.monotonic() - started
        finally:
            release.set()
    assert isinstance(by_config, Failure) and isinstance(by_deadline, Failure)
    assert by_config.error.type == by_deadline.error.type == "timeout"
    assert by_config.error.retryable and by_deadline.error.retryable
    # only the attempt's own deadline running out is a timed-out attempt
    assert (by_config.timed_out, by_deadline.timed_out) == (False, True)
    assert elapsed < 3


# --- redirects ------------------------------------------------------------------


async def test_redirects_followed_only_when_enabled(runner: HttpRunner) -> None:
    def respond(req: Received) -> Reply:
        if req.path == "/old":
            return Reply(307, b"", {"location": "/new"})
        return Reply(200, b"moved here", {"content-type": "text/plain"})

    with serve_http(respond) as server:
        not_followed = await run(runner, {"url": f"{server.url}/old"}, {"a": 1})
        followed = await run(runner, {"url": f"{server.url}/old", "follow_redirects": True}, {"a": 1})
    assert isinstance(not_followed, Failure)
    assert (not_followed.error.type, not_followed.error.retryable) == ("http_307", False)
    assert "follow_redirects" in not_followed.error.message
    assert isinstance(followed, Result) and followed.output["body"] == "moved here"
    assert [r.path for r in server.requests] == ["/old", "/old", "/new"]


async def test_redirect_to_metadata_is_refused(runner: HttpRunner, loopback_only: list[str]) -> None:
    with serve_http(lambda _r: Reply(302, b"", {"location": "http://169.254.169.254/latest/meta-data/"})) as server:
        outcome = await run(runner, {"url": server.url, "method": "GET", "follow_redirects": True})
    assert isinstance(outcome, Failure)
    assert outcome.error.type == "ssrf_refused"
    assert outcome.error.message == "refused: 169.254.169.254 is a cloud metadata address"
    assert all(ipaddress.ip_address(a).is_loopback for a in loopback_only)


# --- SSRF guard -------------------------------------------------------------------


class FakeDns:
    """A hosts-like mapping in front of the system resolver; counts lookups per name."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}
        self.lookups: dict[str, int] = {}

    def __setitem__(self, name: str, addresses: list[str]) -> None:
        self.table[name] = addresses


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in dns.table:
            dns.lookups[host] = dns.lookups.get(host, 0) + 1
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in dns.table[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is a cloud metadata address"),
        ("http://10.0.0.1/admin", "refused: 10.0.0.1 is a private address"),
        ("http://[::ffff:127.0.0.1]:8080/", "refused: ::ffff:127.0.0.1 is an IPv4-mapped address"),
        ("http://[fd00:ec2::254]/", "refused: fd00:ec2::254 is a cloud metadata address"),
        ("http://192.168.1.1/", "refused: 192.168.1.1 is a private address"),
        ("http://169.254.1.1/", "refused: 169.254.1.1 is a link-local address"),
        ("http://0.0.0.0:9000/", "refused: 0.0.0.0 is an unspecified address"),
        ("http://[fe80::1]/", "refused: fe80::1 is a link-local address"),
    ],
)
async def test_ssrf_refusals(runner: HttpRunner, loopback_only: list[str], url: str, message: str) -> None:
    outcome = await run(runner, {"url": url}, {"a": 1})
    assert isinstance(outcome, Failure)
    assert outcome.error.type == "ssrf_refused"
    assert outcome.error.message == message
    assert not outcome.error.retryable
    assert loopback_only == []  # refused before any connection


async def test_name_resolving_to_private_address_is_refused(
    runner: HttpRunner, fake_dns: FakeDns, loopback_only: list[str]
) -> None:
    fake_dns["intranet.example.test"] = ["10.20.30.40"]
    fake_dns["mixed.example.test"] = ["93.184.216.34", "172.16.5.4"]
    outcome = await run(runner, {"url": "https://intranet.example.test/hook"}, {})
    assert isinstance(outcome, Failure) and outcome.error.type == "ssrf_refused"
    assert outcome.error.message == "refused: 10.20.30.40 is a private address (resolved from intranet.example.test)"
    # one private answer among public ones is enough to refuse the name
    outcome = await run(runner, {"url": "https://mixed.example.test/hook"}, {})
    assert isinstance(outcome, Failure)
    assert outcome.error.message == "refused: 172.16.5.4 is a private address (resolved from mixed.example.test)"
    assert loopback_only == []


async def test_connects_to_the_checked_address_keeping_the_host(
    runner: HttpRunner, fake_dns: FakeDns, loopback_only: list[str]
) -> None:
    fake_dns["hooks.example.test"] = ["127.0.0.1"]
    with serve_http() as server:
        url = f"http://hooks.example.test:{server.port}/in"
        first = await run(runner, {"url": url}, {"a": 1})
        second = await run(runner, {"url": url}, {"a": 2})
    assert isinstance(first, Result) and isinstance(second, Result)
    assert [r.headers["host"] for r in server.requests] == [f"hooks.example.test:{server.port}"] * 2
    assert loopback_only == ["127.0.0.1"]  # the resolved IP, and one pooled connection for both
    assert fake_dns.lookups["hooks.example.test"] == 1


async def test_loopback_refused_unless_allow_listed(fake_dns: FakeDns) -> None:
    strict = HttpRunner(AddressPolicy())
    try:
        with serve_http() as server:
            outcome = await run(strict, {"url": server.url}, {})
            fake_dns["localhost.example.test"] = ["127.0.0.1"]
            named = await run(strict, {"url": f"http://localhost.example.test:{server.port}/"}, {})
        assert isinstance(outcome, Failure)
        assert outcome.error.message == "refused: 127.0.0.1 is a loopback address"
        assert isinstance(named, Failure) and named.error.type == "ssrf_refused"
        assert server.requests == []
    finally:
        await strict.aclose()


async def test_ipv6_loopback_allow_listed(runner: HttpRunner) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        ctx = serve_http(host="::1")
        server = ctx.__enter__()
    except OSError:
        pytest.skip("cannot bind ::1")
    try:
        outcome = await run(runner, {"url": server.url}, {"v": 6})
    finally:
        ctx.__exit__(None, None, None)
    assert isinstance(outcome, Result), outcome


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("100.64.0.1", "a non-public address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("fc00::1", "a private address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a private address"),
        ("::", "an unspecified address"),
        ("::ffff:8.8.8.8", "an IPv4-mapped address"),
        ("2002:0a00:0001::", "a 6to4 address embedding a non-public IPv4 address"),
    ],
)
def test_refusal_reasons(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


def test_allow_list_from_settings() -> None:
    policy = AddressPolicy.from_settings({"http_allow_networks": ["10.1.0.0/16"]})
    policy.check(ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(Exception, match=r"refused: 10\.2\.0\.1 is a private address"):
        policy.check(ipaddress.ip_address("10.2.0.1"))
    # allow-listing 127.0.0.0/8 does not open the IPv4-mapped form of it
    loopback = AddressPolicy.from_networks(LOOPBACK)
    with pytest.raises(Exception, match="IPv4-mapped"):
        loopback.check(ipaddress.ip_address("::ffff:127.0.0.1"))


# --- request and response shape ------------------------------------------------


async def test_auth_fields_query_and_response_mapping(runner: HttpRunner) -> None:
    def respond(_r: Received) -> Reply:
        body = {"data": {"id": "ord_1", "items": [{"sku": "A"}, {"sku": "B"}]}}
        return Reply(201, json.dumps(body).encode(), {"content-type": "application/json", "x-trace": "t1"})

    data = {"order": {"id": 42, "total": 9.5}, "customer": {"email": "a@b.c"}, "secret": "not sent"}
    with serve_http(respond) as server:
        outcome = await run(
            runner,
            {
                "url": f"{server.url}/orders",
                "method": "PUT",
                "query": {"dry": False, "v": 2},
                "auth": {"type": "bearer", "token": "tok-1"},
                "headers": {"X-Tenant": "acme"},
                "body": {"source": "neoactions"},
                "fields": {"order_id": "order.id", "email": "$.customer.email"},
                "response_mapping": {
                    "id": "$.body.data.id",
                    "second": "body.data.items[1].sku",
                    "trace": "headers.x-trace",
                },
            },
            data,
        )
    assert isinstance(outcome, Result), outcome
    assert outcome.output == {"status": 201, "id": "ord_1", "second": "B", "trace": "t1"}
    got = server.requests[0]
    assert got.method == "PUT" and got.path == "/orders?dry=false&v=2"
    assert got.headers["authorization"] == "Bearer tok-1"
    assert got.headers["x-tenant"] == "acme"
    assert json.loads(got.body) == {"source": "neoactions", "order_id": 42, "email": "a@b.c"}


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"type": "basic", "username": "ada", "password": "s3cret"}, "authorization", "Basic YWRhOnMzY3JldA=="),
        ({"type": "api_key", "value": "k-1"}, "x-api-key", "k-1"),
        ({"type": "api_key", "header": "X-Custom-Key", "value": "k-2"}, "x-custom-key", "k-2"),
    ],
)
async def test_auth_kinds(runner: HttpRunner, auth: dict[str, str], header: str, value: str) -> None:
    with serve_http() as server:
        outcome = await run(runner, {"url": server.url, "method": "GET", "auth": auth})
    assert isinstance(outcome, Result)
    assert server.requests[0].headers[header] == value
    assert server.requests[0].body == b""  # GET sends no default body


async def test_form_and_text_bodies(runner: HttpRunner) -> None:
    with serve_http(lambda _r: Reply(200, b"ok", {"content-type": "text/plain"})) as server:
        form = await run(
            runner, {"url": server.url, "body": {"To": "+1555", "Body": "hi there"}, "body_format": "form"}
        )
        text = await run(runner, {"url": server.url, "body": "plain words", "body_format": "text"})
    assert isinstance(form, Result) and form.output["body"] == "ok"
    assert isinstance(text, Result)
    assert server.requests[0].body == b"To=%2B1555&Body=hi+there"
    assert server.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert server.requests[1].body == b"plain words"


async def test_response_size_cap(runner: HttpRunner) -> None:
    big = b"x" * 5000
    bomb = gzip.compress(b"y" * 200_000)  # small on the wire, large once decoded
    with serve_http() as server:
        server.respond = lambda _r: Reply(200, big, {"content-type": "text/plain"})
        capped = await run(runner, {"url": server.url, "max_response_bytes": 4096})
        fits = await run(runner, {"url": server.url, "max_response_bytes": 5000})
        server.respond = lambda _r: Reply(200, bomb, {"content-type": "text/plain", "content-encoding": "gzip"})
        bombed = await run(runner, {"url": server.url, "max_response_bytes": 100_000})
    assert len(bomb) < 100_000
    assert isinstance(capped, Failure)
    assert capped.error.type == "response_too_large" and not capped.error.retryable
    assert "4096" in capped.error.message
    assert isinstance(fits, Result) and fits.output["body"] == big.decode()
    assert isinstance(bombed, Failure) and bombed.error.type == "response_too_large"


async def test_log_names_host_not_path(runner: HttpRunner) -> None:
    with serve_http() as server:
        updates = [u async for u in runner.execute({"url": f"{server.url}/T000/B000/secret-token"}, {}, make_ctx())]
    logs = [u.message for u in updates if isinstance(u, Log)]
    assert logs and logs[0].startswith("POST 127.0.0.1 -> 200 in ")
    assert "secret-token" not in logs[0]


# --- presets and registration ----------------------------------------------------


async def test_slack_and_sms_presets() -> None:
    registry = HandlerRegistry({"http_allow_networks": LOOPBACK})
    register(registry)
    assert {"http", "slack", "sms"} <= set(registry.names())

    def respond(req: Received) -> Reply:
        if req.path.endswith("/Messages.json"):
            return Reply(201, b'{"sid":"SM123","status":"queued"}', {"content-type": "application/json"})
        return Reply(200, b"ok", {"content-type": "text/plain"})

    try:
        with serve_http(respond) as server:
            slack_cfg = {"webhook_url": f"{server.url}/services/T1/B2/x", "text": "deploy done", "username": "bot"}
            registry.get("slack").check_config(slack_cfg)
            slack = [u async for u in registry.get("slack").runner.execute(slack_cfg, {}, make_ctx())][-1]
            sms_cfg = {
                "base_url": server.url,
                "account_sid": "AC123",
                "auth_token": "tok",
                "from": "+15550001",
                "to": "+15550002",
                "body": "your code is 1234",
            }
            registry.get("sms").check_config(dict(sms_cfg, auth_token="{{ secrets.twilio_token }}"))
            sms = [u async for u in registry.get("sms").runner.execute(sms_cfg, {}, make_ctx())][-1]
    finally:
        await registry.aclose()
    assert isinstance(slack, Result) and slack.output["body"] == "ok"
    assert json.loads(server.requests[0].body) == {"text": "deploy done", "username": "bot"}
    assert isinstance(sms, Result)
    assert sms.output == {"status": 201, "sid": "SM123", "message_status": "queued"}
    got = server.requests[1]
    assert got.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert got.headers["authorization"] == "Basic QUMxMjM6dG9r"
    assert got.body == b"From=%2B15550001&To=%2B15550002&Body=your+code+is+1234"


def test_config_validation() -> None:
    registry = HandlerRegistry()
    register(registry)
    http = registry.get("http")
    rotating = ["{{ secrets.new_whsec }}", "{{ secrets.old_whsec }}"]
    http.check_config({"url": "https://example.com/hook", "webhook": {"secrets": rotating}})
    http.check_config({"url": "{{ vars.base }}/hook", "webhook": {"secrets": "{{ secrets.wh }}"}})  # rendered later
    bad: list[tuple[dict[str, Any], str]] = [
        ({"url": "ftp://example.com/x"}, "handler.config.url"),
        ({"url": "https://x.test", "webhook": {"secrets": ["plain"]}}, "handler.config.webhook.secrets[0]"),
        # credentials are secret references only (a literal, even a well-formed one, is refused)
        ({"url": "https://x.test", "webhook": {"secrets": [OLD_SECRET]}}, "handler.config.webhook.secrets[0]"),
        ({"url": "https://x.test", "auth": {"type": "bearer", "token": "t"}}, "handler.config.auth.token"),
        ({"url": "https://x.test", "headers": {"authorization": "Basic eA=="}}, "handler.config.headers.authorization"),
        ({"url": "https://x.test", "method": "BREW"}, "handler.config.method"),
        ({"url": "https://x.test", "surprise": 1}, "handler.config"),
        ({"url": "https://x.test", "auth": {"type": "bearer"}}, "handler.config.auth"),
        ({"url": "https://x.test", "body": [1], "fields": ["a"]}, "handler.config.fields"),
    ]
    for config, field in bad:
        with pytest.raises(InvalidArgument) as info:
            http.check_config(config)
        assert info.value.violations[0].field == field, (config, info.value.violations)
