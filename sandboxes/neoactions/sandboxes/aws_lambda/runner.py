"""The ``lambda`` runner: AWS Lambda ``Invoke`` over the guarded, pooled httpx client."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import botocore.session
import httpx
from botocore.credentials import Credentials, ReadOnlyCredentials

from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.sandboxes.aws_lambda.invoke import (
    function_error,
    invoke_url,
    result_payload,
    service_error,
    sign_invoke,
    tail_log,
)
from neoactions.sandboxes.http.guard import AddressPolicy, AddressRefused, guarded_client
from neoactions.sandboxes.http.runner import ResponseTooLarge, read_capped
from neoactions.sandboxes.http.schema import url_problem
from neoactions.server.runners import ExecutionContext, Failure, Log, Result, RunnerUpdate

DEFAULT_TIMEOUT_SECONDS = 30.0
#: Lambda's synchronous response limit is 6 MB; a little more for the envelope
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 64 * 1024


class LambdaConfigError(ValueError):
    """The rendered config cannot make an Invoke (a retry would not help)."""


class LambdaRunner:
    """Invokes a function per attempt; tells function errors from service errors."""

    def __init__(self, policy: AddressPolicy, *, environ: Mapping[str, str] | None = None) -> None:
        self._client = guarded_client(policy)
        self._environ = environ if environ is not None else os.environ
        self._default_credentials: Credentials | None = None
        self._credentials_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _credentials(self, config: JSONObject) -> ReadOnlyCredentials:
        given = config.get("credentials")
        if given:
            return ReadOnlyCredentials(
                str(given["access_key_id"]), str(given["secret_access_key"]), given.get("session_token") or None
            )
        async with self._credentials_lock:
            if self._default_credentials is None:
                # botocore's chain may read files or call a metadata service: not on the loop
                session = botocore.session.get_session()
                self._default_credentials = await asyncio.to_thread(session.get_credentials)
            if self._default_credentials is None:
                raise LambdaConfigError("no AWS credentials in the config or the environment")
            # refreshable (role) credentials may refresh over the network here
            return await asyncio.to_thread(self._default_credentials.get_frozen_credentials)

    def _region(self, config: JSONObject) -> str:
        region = config.get("region") or self._environ.get("AWS_REGION") or self._environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise LambdaConfigError("no region: set region in the config or AWS_REGION")
        return str(region)

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        logs: list[str] = []
        outcome = await self.invoke(config, data, ctx, logs)
        for line in logs:
            yield Log(line)
        yield outcome

    async def invoke(self, config: JSONObject, data: JSON, ctx: ExecutionContext, logs: list[str]) -> Result | Failure:
        """One Invoke; the function's log tail (if asked for) is appended to ``logs``."""
        invocation_type = str(config.get("invocation_type", "RequestResponse"))
        configured = float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        remaining = ctx.remaining_seconds()
        limit = min(configured, remaining)
        if limit <= 0:
            return _timeout(limit, remaining <= configured)
        try:
            region = self._region(config)
            endpoint = str(config.get("endpoint_url") or f"https://lambda.{region}.amazonaws.com")
            problem = url_problem(endpoint)
            if problem:
                raise LambdaConfigError(f"endpoint_url: {problem}")
            payload = config.get("payload", data)
            body = json.dumps(payload, separators=(",", ":")).encode()
            credentials = await self._credentials(config)
        except (LambdaConfigError, TypeError, ValueError) as exc:
            return Failure.of("invalid_config", str(exc))
        signed = sign_invoke(
            invoke_url(endpoint, str(config["function_name"]), config.get("qualifier")),
            body,
            credentials=credentials,
            region=region,
            invocation_type=invocation_type,
            log_tail=bool(config.get("log_tail", False)) and invocation_type == "RequestResponse",
            client_context=config.get("client_context"),
        )
        try:
            async with asyncio.timeout(limit):
                request = self._client.build_request(
                    "POST", signed.url, headers=signed.headers, content=signed.body, timeout=httpx.Timeout(limit)
                )
                response = await self._client.send(request, stream=True)
                try:
                    content = await read_capped(response, MAX_RESPONSE_BYTES)
                finally:
                    await response.aclose()
        except AddressRefused as exc:
            return Failure.of("ssrf_refused", str(exc))
        except ResponseTooLarge as exc:
            return Failure.of("response_too_large", str(exc))
        except (TimeoutError, httpx.TimeoutException):
            return _timeout(limit, remaining <= configured)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return Failure.of("invalid_config", f"{type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:
            return Failure.of("connection_error", f"{type(exc).__name__}: {exc}", retryable=True)
        return self._outcome(response.status_code, response.headers, content, logs)

    def _outcome(self, status: int, headers: httpx.Headers, content: bytes, logs: list[str]) -> Result | Failure:
        if not 200 <= status < 300:
            return Failure(service_error(status, headers, content))
        logs.extend(tail_log(headers))
        kind = headers.get("x-amz-function-error")
        if kind:
            return Failure(function_error(kind, content))
        output: dict[str, Any] = {"status": status}
        if headers.get("x-amz-executed-version"):
            output["executed_version"] = headers["x-amz-executed-version"]
        if status == 200:
            output["payload"] = result_payload(content)
        return Result(output)


def _timeout(limit: float, deadline_bound: bool) -> Failure:
    message = f"no answer from Lambda within {max(limit, 0.0):g}s"
    return Failure(ExecutionError("timeout", message, retryable=True), timed_out=deadline_bound)


__all__ = ["LambdaRunner"]
