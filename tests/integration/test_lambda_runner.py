"""The lambda runner against a local Lambda-like endpoint that checks SigV4 with botocore.

The endpoint recomputes each request's signature with botocore from what
arrived on the wire (method, path, the signed headers, the body) and refuses
it like AWS does (403 InvalidSignatureException) when it does not match.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpcore
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from loopback_http import Received, Reply, serve_http

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, utcnow
from neoactions.sandboxes.aws_lambda import LambdaRunner, register
from neoactions.sandboxes.http import AddressPolicy
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Log, Result

KEY_ID, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1"
REGION = "eu-west-3"
CREDENTIALS = {"access_key_id": KEY_ID, "secret_access_key": SECRET}
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def sigv4_problem(req: Received, token: str | None = None) -> str | None:
    """Why the request's SigV4 signature is wrong, or None: botocore recomputes it."""
    match = _AUTH.match(req.headers.get("authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    if (match["key"], match["region"], match["service"]) != (KEY_ID, REGION, "lambda"):
        return f"wrong credential scope {match['key']}/{match['region']}/{match['service']}"
    amz_date = req.headers.get("x-amz-date", "")
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if abs((datetime.now(UTC) - signed_at).total_seconds()) > 300 or match["date"] != amz_date[:8]:
        return "stale or inconsistent X-Amz-Date"
    if token is not None and req.headers.get("x-amz-security-token") != token:
        return "missing session token"
    names = match["signed"].split(";")
    for required in ("host", "x-amz-date", "content-type", "x-amz-invocation-type"):
        if required not in names:
            return f"{required} is not signed"
    request = AWSRequest(
        method=req.method,
        url=f"http://{req.headers['host']}{req.path}",
        data=req.body,
        headers={name: req.headers[name] for name in names},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(KEY_ID, SECRET, token), "lambda", REGION)
    if signer.signed_headers(signer.headers_to_sign(request)) != match["signed"]:
        return "signed header list mismatch"
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if hmac.compare_digest(expected, match["signature"]) else "signature mismatch"


def _error(status: int, code: str, message: str) -> Reply:
    body = json.dumps({"Type": "User" if status < 500 else "Service", "message": message}).encode()
    return Reply(
        status, body, {"content-type": "application/json", "x-amzn-errortype": f"{code}:http://internal.amazon.com/"}
    )


class FakeLambda:
    """Functions by name: echo, fails, and a few that make the API fail."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.verified = 0

    def __call__(self, req: Received) -> Reply:
        problem = sigv4_problem(req, self.token)
        if problem is not None:
            return _error(403, "InvalidSignatureException", f"The request signature does not match: {problem}")
        self.verified += 1
        match = re.match(r"^/2015-03-31/functions/([^/?]+)/invocations(?:\?Qualifier=(.+))?$", req.path)
        if req.method != "POST" or match is None:
            return _error(404, "UnknownOperationException", "unknown operation")
        # a name, a partial ARN or a full ARN all end in the function's name
        name, qualifier = unquote(match[1]).rsplit(":", 1)[-1], match[2]
        invocation = req.headers.get("x-amz-invocation-type")
        if name == "echo":
            if invocation == "Event":
                return Reply(202, b"")
            if invocation == "DryRun":
                return Reply(204, b"")
            logs = base64.b64encode(b"START RequestId: 1\nhello from echo\nEND RequestId: 1\n").decode()
            headers = {"x-amz-executed-version": qualifier or "$LATEST", "content-type": "application/json"}
            if req.headers.get("x-amz-log-type") == "Tail":
                headers["x-amz-log-result"] = logs
            context = req.headers.get("x-amz-client-context")
            payload = {
                "echo": json.loads(req.body),
                "context": json.loads(base64.b64decode(context)) if context else None,
            }
            return Reply(200, json.dumps(payload).encode(), headers)
        if name == "fails":
            error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ['  File "h.py", line 3']}
            return Reply(200, json.dumps(error).encode(), {"x-amz-function-error": "Unhandled"})
        status, code = {
            "missing": (404, "ResourceNotFoundException"),
            "throttled": (429, "TooManyRequestsException"),
            "updating": (409, "ResourceConflictException"),
            "oversized": (413, "RequestTooLargeException"),
            "broken": (500, "ServiceException"),
            "no-eni": (502, "EC2ThrottledException"),
        }.get(name, (404, "ResourceNotFoundException"))
        return _error(status, code, f"{code} for {name}")


def make_ctx(seconds: float = 10.0) -> ExecutionContext:
    return ExecutionContext(
        tenant="acme",
        execution_id="exec-9",
        action_name="invoke",
        action_version=1,
        attempt=1,
        idempotency_key="key-9",
        deadline=utcnow() + timedelta(seconds=seconds),
    )


async def run(runner: LambdaRunner, config: dict[str, Any], data: JSON = None) -> tuple[Result | Failure, list[str]]:
    updates = [u async for u in runner.execute(config, data, make_ctx())]
    final = updates[-1]
    assert isinstance(final, Result | Failure)
    return final, [u.message for u in updates if isinstance(u, Log)]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail (instead of connecting) if the runner ever opens a connection off loopback."""
    original = httpcore.AnyIOBackend.connect_tcp

    async def connect_tcp(self: httpcore.AnyIOBackend, host: str, port: int, **kwargs: Any) -> Any:
        if not ipaddress.ip_address(host).is_loopback:
            pytest.fail(f"the runner tried to connect to {host}")
        return await original(self, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)


@pytest.fixture
async def runner() -> AsyncIterator[LambdaRunner]:
    r = LambdaRunner(AddressPolicy.from_networks(["127.0.0.0/8", "::1/128"]))
    yield r
    await r.aclose()


def config(endpoint: str, function: str, **extra: Any) -> dict[str, Any]:
    return {"function_name": function, "endpoint_url": endpoint, "region": REGION, "credentials": CREDENTIALS, **extra}


async def test_request_response_signed_and_returned(runner: LambdaRunner) -> None:
    fake = FakeLambda()
    with serve_http(fake) as server:
        outcome, logs = await run(
            runner, config(server.url, "echo", log_tail=True, client_context={"custom": {"k": "v"}}), {"order": 42}
        )
    assert isinstance(outcome, Result), outcome
    assert outcome.output == {
        "status": 200,
        "executed_version": "$LATEST",
        "payload": {"echo": {"order": 42}, "context": {"custom": {"k": "v"}}},
    }
    assert fake.verified == 1
    assert "hello from echo" in logs
    assert server.requests[0].headers["x-amz-invocation-type"] == "RequestResponse"


async def test_event_and_dry_run_invocations(runner: LambdaRunner) -> None:
    fake = FakeLambda()
    with serve_http(fake) as server:
        event, _ = await run(runner, config(server.url, "echo", invocation_type="Event", payload={"p": 1}), {"x": 0})
        dry, _ = await run(runner, config(server.url, "echo", invocation_type="DryRun"), {})
    assert isinstance(event, Result) and event.output == {"status": 202}
    assert isinstance(dry, Result) and dry.output == {"status": 204}
    assert json.loads(server.requests[0].body) == {"p": 1}  # the configured payload, not the input
    assert [r.headers["x-amz-invocation-type"] for r in server.requests] == ["Event", "DryRun"]
    assert fake.verified == 2


async def test_arn_qualifier_and_session_token(runner: LambdaRunner) -> None:
    fake = FakeLambda(token=TOKEN)
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:echo"
    creds = {**CREDENTIALS, "session_token": TOKEN}
    with serve_http(fake) as server:
        outcome, _ = await run(runner, config(server.url, arn, qualifier="live", credentials=creds), {"a": 1})
    assert fake.verified == 1, server.requests[0].headers
    assert server.requests[0].path == (
        f"/2015-03-31/functions/arn%3Aaws%3Alambda%3A{REGION}%3A123456789012%3Afunction%3Aecho/invocations?Qualifier=live"
    )
    assert isinstance(outcome, Result), outcome
    assert outcome.output["executed_version"] == "live"


async def test_function_error_is_told_apart(runner: LambdaRunner) -> None:
    with serve_http(FakeLambda()) as server:
        outcome, _ = await run(runner, config(server.url, "fails"), {})
    assert isinstance(outcome, Failure)
    assert outcome.error.type == "lambda_function_error"
    assert outcome.error.message == "Unhandled ValueError: boom"
    assert 'File "h.py"' in outcome.error.stack
    assert outcome.error.retryable  # like any handler that raised: the retry policy decides


@pytest.mark.parametrize(
    ("function", "code", "retryable"),
    [
        ("missing", "ResourceNotFoundException", False),
        ("oversized", "RequestTooLargeException", False),
        ("throttled", "TooManyRequestsException", True),
        ("updating", "ResourceConflictException", True),
        ("broken", "ServiceException", True),
        ("no-eni", "EC2ThrottledException", True),
    ],
)
async def test_service_errors_classified(runner: LambdaRunner, function: str, code: str, retryable: bool) -> None:
    fake = FakeLambda()
    with serve_http(fake) as server:
        outcome, _ = await run(runner, config(server.url, function), {})
    assert fake.verified == 1
    assert isinstance(outcome, Failure)
    assert outcome.error.type == "lambda_service_error"
    assert code in outcome.error.message and function in outcome.error.message
    assert outcome.error.retryable is retryable


async def test_wrong_secret_fails_signature_check(runner: LambdaRunner) -> None:
    fake = FakeLambda()
    wrong = {"access_key_id": KEY_ID, "secret_access_key": "not-the-secret"}
    with serve_http(fake) as server:
        outcome, _ = await run(runner, config(server.url, "echo", credentials=wrong), {})
    assert fake.verified == 0
    assert isinstance(outcome, Failure)
    assert outcome.error.type == "lambda_service_error" and not outcome.error.retryable
    assert "InvalidSignatureException" in outcome.error.message and "signature mismatch" in outcome.error.message


async def test_credentials_and_region_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    runner = LambdaRunner(AddressPolicy.from_networks(["127.0.0.0/8"]))
    fake = FakeLambda()
    try:
        with serve_http(fake) as server:
            outcome, _ = await run(runner, {"function_name": "echo", "endpoint_url": server.url}, {"env": True})
    finally:
        await runner.aclose()
    assert isinstance(outcome, Result), outcome
    assert fake.verified == 1


async def test_missing_region_and_refused_endpoint(monkeypatch: pytest.MonkeyPatch, runner: LambdaRunner) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    no_region, _ = await run(runner, {"function_name": "f", "credentials": CREDENTIALS}, {})
    assert isinstance(no_region, Failure) and no_region.error.type == "invalid_config"
    assert "region" in no_region.error.message
    refused, _ = await run(runner, config("http://169.254.169.254", "f"), {})
    assert isinstance(refused, Failure) and refused.error.type == "ssrf_refused"
    assert refused.error.message == "refused: 169.254.169.254 is a cloud metadata address"


def test_config_validation() -> None:
    registry = HandlerRegistry()
    register(registry)
    handler = registry.get("lambda")
    handler.check_config({"function_name": "f", "invocation_type": "Event", "region": "us-east-1"})
    handler.check_config({"function_name": "{{ vars.fn }}", "endpoint_url": "{{ vars.endpoint }}"})
    bad_configs: list[tuple[dict[str, Any], str]] = [
        ({}, "handler.config"),
        ({"function_name": "f", "invocation_type": "Later"}, "handler.config.invocation_type"),
        ({"function_name": "f", "endpoint_url": "gopher://x"}, "handler.config.endpoint_url"),
        ({"function_name": "f", "credentials": {"access_key_id": "a"}}, "handler.config.credentials"),
        ({"function_name": "f", "invocation_type": "Event", "client_context": {}}, "handler.config.client_context"),
    ]
    for bad, field in bad_configs:
        with pytest.raises(InvalidArgument) as info:
            handler.check_config(bad)
        assert info.value.violations[0].field == field
