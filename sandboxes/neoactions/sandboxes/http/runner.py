"""The ``http`` runner: one pooled, SSRF-guarded httpx client for every execution."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from opentelemetry.trace import SpanKind

from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.sandboxes.http.guard import AddressPolicy, AddressRefused, guarded_client
from neoactions.sandboxes.http.request import PreparedRequest, RequestConfigError, build_request
from neoactions.sandboxes.http.response import (
    classify_status,
    decode_body,
    kept_headers,
    map_response,
)
from neoactions.sandboxes.http.schema import DEFAULT_RESPONSE_BYTES, MAX_RESPONSE_BYTES
from neoactions.sandboxes.http.signing import WebhookSigner
from neoactions.server.runners import ExecutionContext, Failure, Log, Result, RunnerUpdate
from neoactions.server.telemetry import tracing

DEFAULT_TIMEOUT_SECONDS = 30.0
#: how much of an error response's body goes into the error message
_ERROR_SNIPPET_BYTES = 2048


class ResponseTooLarge(Exception):
    def __init__(self, cap: int) -> None:
        super().__init__(f"the response body exceeds the cap of {cap} bytes")


async def read_capped(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """Read the (decoded) body, at most ``cap`` bytes: raise past it, or cut if ``truncate``.

    Counting decoded bytes, not wire bytes, is what stops a compression bomb.
    """
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > cap:
        raise ResponseTooLarge(cap)
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > cap:
            if truncate:
                return bytes(buffer[:cap])
            raise ResponseTooLarge(cap)
    return bytes(buffer)


class HttpRunner:
    """Sends one request per attempt and classifies the answer.

    2xx is a result (status, a subset of headers, the body as JSON or text, or
    the ``response_mapping`` of it); 408/429/5xx, connection errors and
    timeouts are retryable failures; anything else fails for good.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        max_connections: int = 100,
        max_keepalive: int = 20,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._client = guarded_client(policy, max_connections=max_connections, max_keepalive=max_keepalive)
        self._signer = WebhookSigner()
        self._max_response_bytes = max_response_bytes

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> HttpRunner:
        return cls(
            AddressPolicy.from_settings(settings),
            max_connections=int(settings.get("http_max_connections", 100)),
            max_keepalive=int(settings.get("http_max_keepalive", 20)),
            max_response_bytes=int(settings.get("http_max_response_bytes", MAX_RESPONSE_BYTES)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        started = time.perf_counter()
        outcome, status = await self.deliver(config, data, ctx)
        if status:
            # method, host and status only: paths and queries may carry secrets (Slack URLs do)
            elapsed = (time.perf_counter() - started) * 1000
            yield Log(f"{status} in {elapsed:.1f} ms")
        yield outcome

    async def deliver(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> tuple[Result | Failure, str]:
        """One attempt: the outcome and a one-line summary for the log ("" if nothing was sent)."""
        try:
            prepared = build_request(config, data, ctx, self._signer)
        except RequestConfigError as exc:
            return Failure.of("invalid_config", str(exc)), ""
        configured = float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        remaining = ctx.remaining_seconds()
        limit = min(configured, remaining)
        deadline_bound = remaining <= configured
        if limit <= 0:
            return _timeout(limit, deadline_bound), ""
        cap = min(int(config.get("max_response_bytes", DEFAULT_RESPONSE_BYTES)), self._max_response_bytes)
        try:
            async with asyncio.timeout(limit):
                return await self._send(prepared, config, limit, cap)
        except AddressRefused as exc:
            return Failure.of("ssrf_refused", str(exc)), ""
        except (TimeoutError, httpx.TimeoutException):
            return _timeout(limit, deadline_bound), ""
        except httpx.TooManyRedirects as exc:
            return Failure.of("too_many_redirects", str(exc)), ""
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            return Failure.of("invalid_request", f"{type(exc).__name__}: {exc}"), ""
        except httpx.TransportError as exc:
            return Failure.of("connection_error", f"{type(exc).__name__}: {exc}", retryable=True), ""

    async def _send(
        self, prepared: PreparedRequest, config: JSONObject, limit: float, cap: int
    ) -> tuple[Result | Failure, str]:
        if tracing.state.enabled:
            # an HTTP client span, child of the attempt; the target sees it as its parent
            url = httpx.URL(prepared.url)
            attributes = {"http.request.method": prepared.method, "server.address": url.host, "url.scheme": url.scheme}
            with tracing.client_span(prepared.headers, prepared.method, SpanKind.CLIENT, attributes) as (span, ids):
                prepared.headers.update(ids)
                outcome, summary, status = await self._exchange(prepared, config, limit, cap)
                if span is not None and span.is_recording():
                    span.set_attribute("http.response.status_code", status)
                return outcome, summary
        outcome, summary, _ = await self._exchange(prepared, config, limit, cap)
        return outcome, summary

    async def _exchange(
        self, prepared: PreparedRequest, config: JSONObject, limit: float, cap: int
    ) -> tuple[Result | Failure, str, int]:
        request = self._client.build_request(
            prepared.method,
            prepared.url,
            params=prepared.params or None,
            headers=prepared.headers,
            content=prepared.content,
            timeout=httpx.Timeout(limit),
        )
        response = await self._client.send(
            request, stream=True, follow_redirects=bool(config.get("follow_redirects", False))
        )
        try:
            summary = f"{prepared.method} {response.url.host} -> {response.status_code}"
            return await self._outcome(response, config, cap), summary, response.status_code
        finally:
            await response.aclose()

    async def _outcome(self, response: httpx.Response, config: JSONObject, cap: int) -> Result | Failure:
        status = response.status_code
        verdict = classify_status(status, response.headers.get("retry-after"))
        if verdict is not None:
            snippet = await read_capped(response, min(cap, _ERROR_SNIPPET_BYTES), truncate=True)
            message = f"HTTP {status} {response.reason_phrase}"
            text = snippet.decode("utf-8", errors="replace").strip()
            if text:
                message += f": {text[:500]}"
            if 300 <= status < 400 and "location" in response.headers:
                message += " (redirect not followed: set follow_redirects to follow it)"
            return Failure(
                ExecutionError(
                    verdict.type,
                    message,
                    retryable=verdict.retryable,
                    retry_after_ms=verdict.retry_after_ms,
                )
            )
        try:
            content = await read_capped(response, cap)
        except ResponseTooLarge as exc:
            return Failure.of("response_too_large", str(exc))
        body = decode_body(content, response.headers.get("content-type", ""))
        mapping = config.get("response_mapping")
        if mapping:
            document = {"status": status, "headers": dict(response.headers), "body": body}
            try:
                return Result({"status": status, **map_response(document, mapping)})
            except ValueError as exc:
                return Failure.of("invalid_config", f"response_mapping: {exc}")
        headers = kept_headers(response.headers, config.get("response_headers"))
        return Result({"status": status, "headers": headers, "body": body})


def _timeout(limit: float, deadline_bound: bool) -> Failure:
    """A timeout is retryable; ``timed_out`` only when the attempt's own deadline ran out."""
    message = f"no complete response within {max(limit, 0.0):g}s"
    return Failure(ExecutionError("timeout", message, retryable=True), timed_out=deadline_bound)


__all__ = ["DEFAULT_TIMEOUT_SECONDS", "HttpRunner", "ResponseTooLarge", "read_capped"]
