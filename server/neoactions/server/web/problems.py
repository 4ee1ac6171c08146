"""RFC 9457 problem details: every error of the HTTP surface as ``application/problem+json``.

The error tree (:mod:`neoactions.domain.errors`) maps to HTTP statuses in one table here, as
:mod:`neoactions.domain.status` maps it to gRPC codes; the problem carries the same stable
``reason`` and, for validation failures, the invalid fields.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from neoactions.domain import errors

PROBLEM_JSON = "application/problem+json"
#: problem types are named under the error domain, one per reason
TYPE_BASE = f"https://{errors.DOMAIN}/problems/"

_STATUS: dict[type[errors.NeoActionsError], int] = {
    errors.InvalidArgument: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Aborted: 409,
    errors.FailedPrecondition: 409,
    errors.ResourceExhausted: 429,
    errors.Unavailable: 503,
    errors.Internal: 500,
}
#: reasons with a more precise HTTP status than their class's
_REASON_STATUS = {"PAYLOAD_TOO_LARGE": 413, "UNSUPPORTED_MEDIA_TYPE": 415}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def http_status(exc: errors.NeoActionsError) -> int:
    if exc.reason in _REASON_STATUS:
        return _REASON_STATUS[exc.reason]
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def problem(
    status: int, reason: str, detail: str, *, instance: str = "", errors_: list[dict[str, str]] | None = None
) -> JSONResponse:
    """A problem response: ``type`` names the reason, ``title`` the status, ``detail`` this occurrence."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + reason.lower().replace("_", "-"),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "reason": reason,
    }
    if instance:
        body["instance"] = instance
    if errors_:
        body["errors"] = errors_
    headers = {"WWW-Authenticate": 'Bearer realm="neoactions"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_of(exc: errors.NeoActionsError, instance: str = "") -> JSONResponse:
    """``exc`` as a problem response (an internal error's message is not shown)."""
    status = http_status(exc)
    detail = exc.message if status < 500 or isinstance(exc, errors.Unavailable) else "internal error"
    violations = [{"field": v.field, "description": v.description} for v in exc.violations]
    return problem(status, exc.reason, detail, instance=instance, errors_=violations)


__all__ = ["PROBLEM_JSON", "TYPE_BASE", "http_status", "problem", "problem_of"]
