"""Building a SigV4-signed Lambda ``Invoke`` request and reading its answer.

Signing uses botocore's own ``SigV4Auth`` (so it is AWS's canonicalisation, not
ours); sending is left to the caller's pooled httpx client, because a boto3
client would block the event loop.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.sandboxes.http.response import decode_body, parse_retry_after

API_VERSION = "2015-03-31"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def invoke_url(endpoint: str, function_name: str, qualifier: str | None) -> str:
    """``POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]``.

    The name is percent-encoded whole (an ARN's ``:`` included), as botocore's
    serializer does for a URI label.
    """
    url = f"{endpoint.rstrip('/')}/{API_VERSION}/functions/{quote(function_name, safe='')}/invocations"
    if qualifier:
        url += f"?Qualifier={quote(qualifier, safe='')}"
    return url


def sign_invoke(
    url: str,
    payload: bytes,
    *,
    credentials: ReadOnlyCredentials,
    region: str,
    invocation_type: str,
    log_tail: bool = False,
    client_context: JSONObject | None = None,
) -> SignedRequest:
    """Headers for one Invoke, signed with SigV4 for service ``lambda`` in ``region``."""
    headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": invocation_type}
    if log_tail:
        headers["X-Amz-Log-Type"] = "Tail"
    if client_context:
        headers["X-Amz-Client-Context"] = base64.b64encode(json.dumps(client_context).encode()).decode()
    request = AWSRequest(method="POST", url=url, data=payload, headers=headers)
    SigV4Auth(credentials, "lambda", region).add_auth(request)
    return SignedRequest(url, {k: str(v) for k, v in request.headers.items()}, payload)


def function_error(kind: str, body: bytes) -> ExecutionError:
    """The function itself failed (``X-Amz-Function-Error``): its error type, message and stack.

    Retryable like any handler that raises; the action's retry policy decides.
    """
    document = decode_body(body, "application/json")
    if isinstance(document, dict):
        error_type = str(document.get("errorType", "Error"))
        message = str(document.get("errorMessage", ""))
        trace = document.get("stackTrace", [])
        stack = "\n".join(str(line) for line in trace) if isinstance(trace, list) else str(trace)
    else:
        error_type, message, stack = "Error", str(document or ""), ""
    return ExecutionError(
        "lambda_function_error", f"{kind} {error_type}: {message}".strip(), stack=stack, retryable=True
    )


def service_error(status: int, headers: Mapping[str, str], body: bytes) -> ExecutionError:
    """The Lambda API refused or failed the call (the function did not run, or not fully).

    Throttling (429), Lambda's 5xx and ``ResourceConflictException`` (the function
    is being updated) pass; anything else (not found, access denied, bad
    payload, too large) will not change by retrying.
    """
    code = headers.get("x-amzn-errortype", "").split(":", 1)[0]
    document = decode_body(body, "application/json")
    message = ""
    if isinstance(document, dict):
        code = code or str(document.get("__type", document.get("Type", ""))).rsplit("#", 1)[-1]
        message = str(document.get("message", document.get("Message", "")))
    elif document:
        message = str(document)[:500]
    retryable = status == 429 or status >= 500 or code == "ResourceConflictException"
    return ExecutionError(
        "lambda_service_error",
        f"HTTP {status} {code or 'error'}: {message}".rstrip(": "),
        retryable=retryable,
        retry_after_ms=parse_retry_after(headers.get("retry-after")) if retryable else None,
    )


def tail_log(headers: Mapping[str, str]) -> list[str]:
    """The function's log tail (``X-Amz-Log-Result``, base64), as lines."""
    encoded = headers.get("x-amz-log-result")
    if not encoded:
        return []
    try:
        text = base64.b64decode(encoded).decode("utf-8", errors="replace")
    except ValueError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def result_payload(body: bytes) -> JSON:
    """A function's result: its JSON, or text if it is not JSON."""
    return decode_body(body, "application/json")


__all__ = [
    "API_VERSION",
    "SignedRequest",
    "function_error",
    "invoke_url",
    "result_payload",
    "service_error",
    "sign_invoke",
    "tail_log",
]
