"""The one table mapping the error tree to gRPC status codes, and back (for the client).

Errors travel as ``google.rpc.Status`` with an ``ErrorInfo`` (reason, domain,
metadata) and, for validation failures, a ``BadRequest`` listing the fields.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from neoactions.domain import errors

_TO_CODE: dict[type[errors.NeoActionsError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Internal: grpc.StatusCode.INTERNAL,
}
_FROM_CODE = {code: cls for cls, code in _TO_CODE.items()}


def status_code(exc: errors.NeoActionsError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in _TO_CODE:
            return _TO_CODE[cls]
    return grpc.StatusCode.INTERNAL


def to_status(exc: errors.NeoActionsError) -> grpc.Status:
    """``exc`` as a rich ``grpc.Status`` (ErrorInfo + BadRequest details)."""
    code = status_code(exc)
    details = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=errors.DOMAIN, metadata=exc.metadata))
    details.append(info)
    if exc.violations:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in exc.violations
                ]
            )
        )
        details.append(bad)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=exc.message, details=details)
    return rpc_status.to_status(status)


def from_rpc_error(err: grpc.RpcError) -> errors.NeoActionsError:
    """Rebuild the error-tree class from a failed call (used by the client)."""
    code: grpc.StatusCode = err.code()
    message = err.details() or code.name
    reason = code.name
    violations: list[errors.FieldViolation] = []
    metadata: dict[str, str] = {}
    status = rpc_status.from_call(err)
    if status is not None:
        message = status.message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
                metadata = dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [errors.FieldViolation(v.field, v.description) for v in bad.field_violations]
    cls = _FROM_CODE.get(code, errors.NeoActionsError)
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN):
        cls = errors.Unavailable if code is grpc.StatusCode.DEADLINE_EXCEEDED else errors.NeoActionsError
    return cls(message, reason=reason, violations=violations, metadata=metadata)


__all__ = ["from_rpc_error", "status_code", "to_status"]
