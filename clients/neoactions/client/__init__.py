"""The typed Python client of neoactions, async and sync, and the ``neoactions`` CLI.

::

    from neoactions.client import AsyncClient

    async with AsyncClient("127.0.0.1:50051", tenant="shop") as client:
        await client.apply("actions.yaml")
        result = await client.publish("orders.created", {"amount": 250}, wait=True)
        for execution in result.executions:
            print(execution.action_name, execution.status, execution.output)

Calls return the domain objects of :mod:`neoactions.domain.model` and raise the
error tree of :mod:`neoactions.domain.errors` (re-exported here).
"""

from neoactions.client._apply import ApplySource
from neoactions.client._async import AsyncClient
from neoactions.client._auth import authorized_channel
from neoactions.client._config import DEFAULT_TARGET, DEFAULT_TIMEOUT
from neoactions.client._requests import ActionInput, EventInput, ExecuteTarget
from neoactions.client._sync import Client
from neoactions.client.declarative import (
    ActionDocument,
    action_to_document,
    load_file,
    parse_action,
    parse_documents,
    parse_yaml,
)
from neoactions.client.results import (
    ActionTest,
    ApplyOutcome,
    ApplyResult,
    Page,
    PublishResult,
    StreamedUpdate,
)
from neoactions.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NeoActionsError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from neoactions.domain.model import (
    Action,
    Event,
    Execution,
    ExecutionStatus,
    ExecutionUpdate,
    Tenant,
    UpdateKind,
)

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "Aborted",
    "Action",
    "ActionDocument",
    "ActionInput",
    "ActionTest",
    "AlreadyExists",
    "ApplyOutcome",
    "ApplyResult",
    "ApplySource",
    "AsyncClient",
    "Client",
    "Event",
    "EventInput",
    "ExecuteTarget",
    "Execution",
    "ExecutionStatus",
    "ExecutionUpdate",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NeoActionsError",
    "NotFound",
    "Page",
    "PermissionDenied",
    "PublishResult",
    "ResourceExhausted",
    "StreamedUpdate",
    "Tenant",
    "Unauthenticated",
    "Unavailable",
    "UpdateKind",
    "action_to_document",
    "authorized_channel",
    "load_file",
    "parse_action",
    "parse_documents",
    "parse_yaml",
]
