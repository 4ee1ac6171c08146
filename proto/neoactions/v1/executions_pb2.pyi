import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from neoactions.v1 import actions_pb2 as _actions_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_PENDING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SCHEDULED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SUCCEEDED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_TIMED_OUT: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_DEAD_LETTERED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_WAITING: _ClassVar[ExecutionStatus]
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_PENDING: ExecutionStatus
EXECUTION_STATUS_SCHEDULED: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_SUCCEEDED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_TIMED_OUT: ExecutionStatus
EXECUTION_STATUS_CANCELLED: ExecutionStatus
EXECUTION_STATUS_DEAD_LETTERED: ExecutionStatus
EXECUTION_STATUS_WAITING: ExecutionStatus

class ExecutionError(_message.Message):
    __slots__ = ("type", "message", "stack", "retryable", "retry_after_ms")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    stack: str
    retryable: bool
    retry_after_ms: int
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., stack: _Optional[str] = ..., retryable: _Optional[bool] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("number", "runner", "status", "start_time", "end_time", "duration_ms", "output_json", "error")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    number: int
    runner: str
    status: ExecutionStatus
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    duration_ms: float
    output_json: str
    error: ExecutionError
    def __init__(self, number: _Optional[int] = ..., runner: _Optional[str] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[float] = ..., output_json: _Optional[str] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("name", "id", "action", "action_version", "handler_type", "event_id", "status", "input_json", "output_json", "error", "idempotency_key", "correlation_id", "causation_id", "parent_execution", "priority", "mode", "attempt_count", "attempts", "create_time", "update_time", "start_time", "end_time", "next_attempt_time", "action_id", "handler_version", "replay_of", "steps")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLAY_OF_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    action: str
    action_version: int
    handler_type: str
    event_id: str
    status: ExecutionStatus
    input_json: str
    output_json: str
    error: ExecutionError
    idempotency_key: str
    correlation_id: str
    causation_id: str
    parent_execution: str
    priority: _actions_pb2.Priority
    mode: _actions_pb2.ExecutionMode
    attempt_count: int
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    action_id: str
    handler_version: str
    replay_of: str
    steps: _containers.RepeatedCompositeFieldContainer[WorkflowStepState]
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., action: _Optional[str] = ..., action_version: _Optional[int] = ..., handler_type: _Optional[str] = ..., event_id: _Optional[str] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., input_json: _Optional[str] = ..., output_json: _Optional[str] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., correlation_id: _Optional[str] = ..., causation_id: _Optional[str] = ..., parent_execution: _Optional[str] = ..., priority: _Optional[_Union[_actions_pb2.Priority, str]] = ..., mode: _Optional[_Union[_actions_pb2.ExecutionMode, str]] = ..., attempt_count: _Optional[int] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action_id: _Optional[str] = ..., handler_version: _Optional[str] = ..., replay_of: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[WorkflowStepState, _Mapping]]] = ...) -> None: ...

class WorkflowStepState(_message.Message):
    __slots__ = ("step", "index", "status", "child_execution", "attempts", "output_json", "error", "start_time", "end_time", "wake_time")
    STEP_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHILD_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    WAKE_TIME_FIELD_NUMBER: _ClassVar[int]
    step: str
    index: int
    status: str
    child_execution: str
    attempts: int
    output_json: str
    error: ExecutionError
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    wake_time: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[str] = ..., index: _Optional[int] = ..., status: _Optional[str] = ..., child_execution: _Optional[str] = ..., attempts: _Optional[int] = ..., output_json: _Optional[str] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., wake_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExecutionUpdate(_message.Message):
    __slots__ = ("kind", "execution", "execution_id", "action", "event_id", "correlation_id", "status", "attempt", "message", "progress", "output_json", "error", "time", "resume_token", "step")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ExecutionUpdate.Kind]
        KIND_EVENT_ACCEPTED: _ClassVar[ExecutionUpdate.Kind]
        KIND_SCHEDULED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STARTED: _ClassVar[ExecutionUpdate.Kind]
        KIND_LOG: _ClassVar[ExecutionUpdate.Kind]
        KIND_PROGRESS: _ClassVar[ExecutionUpdate.Kind]
        KIND_ATTEMPT_FAILED: _ClassVar[ExecutionUpdate.Kind]
        KIND_RETRY_SCHEDULED: _ClassVar[ExecutionUpdate.Kind]
        KIND_SUCCEEDED: _ClassVar[ExecutionUpdate.Kind]
        KIND_FAILED: _ClassVar[ExecutionUpdate.Kind]
        KIND_TIMED_OUT: _ClassVar[ExecutionUpdate.Kind]
        KIND_CANCELLED: _ClassVar[ExecutionUpdate.Kind]
        KIND_DEAD_LETTERED: _ClassVar[ExecutionUpdate.Kind]
        KIND_SUSPENDED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STEP_SCHEDULED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STEP_STARTED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STEP_SUCCEEDED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STEP_FAILED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STEP_SKIPPED: _ClassVar[ExecutionUpdate.Kind]
        KIND_STEP_WAITING: _ClassVar[ExecutionUpdate.Kind]
    KIND_UNSPECIFIED: ExecutionUpdate.Kind
    KIND_EVENT_ACCEPTED: ExecutionUpdate.Kind
    KIND_SCHEDULED: ExecutionUpdate.Kind
    KIND_STARTED: ExecutionUpdate.Kind
    KIND_LOG: ExecutionUpdate.Kind
    KIND_PROGRESS: ExecutionUpdate.Kind
    KIND_ATTEMPT_FAILED: ExecutionUpdate.Kind
    KIND_RETRY_SCHEDULED: ExecutionUpdate.Kind
    KIND_SUCCEEDED: ExecutionUpdate.Kind
    KIND_FAILED: ExecutionUpdate.Kind
    KIND_TIMED_OUT: ExecutionUpdate.Kind
    KIND_CANCELLED: ExecutionUpdate.Kind
    KIND_DEAD_LETTERED: ExecutionUpdate.Kind
    KIND_SUSPENDED: ExecutionUpdate.Kind
    KIND_STEP_SCHEDULED: ExecutionUpdate.Kind
    KIND_STEP_STARTED: ExecutionUpdate.Kind
    KIND_STEP_SUCCEEDED: ExecutionUpdate.Kind
    KIND_STEP_FAILED: ExecutionUpdate.Kind
    KIND_STEP_SKIPPED: ExecutionUpdate.Kind
    KIND_STEP_WAITING: ExecutionUpdate.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    kind: ExecutionUpdate.Kind
    execution: str
    execution_id: str
    action: str
    event_id: str
    correlation_id: str
    status: ExecutionStatus
    attempt: int
    message: str
    progress: float
    output_json: str
    error: ExecutionError
    time: _timestamp_pb2.Timestamp
    resume_token: str
    step: str
    def __init__(self, kind: _Optional[_Union[ExecutionUpdate.Kind, str]] = ..., execution: _Optional[str] = ..., execution_id: _Optional[str] = ..., action: _Optional[str] = ..., event_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., attempt: _Optional[int] = ..., message: _Optional[str] = ..., progress: _Optional[float] = ..., output_json: _Optional[str] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resume_token: _Optional[str] = ..., step: _Optional[str] = ...) -> None: ...

class InlineAction(_message.Message):
    __slots__ = ("handler", "timeout_seconds")
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    handler: _actions_pb2.Handler
    timeout_seconds: float
    def __init__(self, handler: _Optional[_Union[_actions_pb2.Handler, _Mapping]] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("parent", "action", "inline", "input_json", "correlation_id", "idempotency_key", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    action: str
    inline: InlineAction
    input_json: str
    correlation_id: str
    idempotency_key: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., action: _Optional[str] = ..., inline: _Optional[_Union[InlineAction, _Mapping]] = ..., input_json: _Optional[str] = ..., correlation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetExecutionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "action", "status", "event_id", "correlation_id", "start_time", "end_time")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    action: str
    status: ExecutionStatus
    event_id: str
    correlation_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., action: _Optional[str] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., event_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchExecutionsRequest(_message.Message):
    __slots__ = ("parent", "action", "event_id", "correlation_id", "execution_id", "resume_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    action: str
    event_id: str
    correlation_id: str
    execution_id: str
    resume_token: str
    def __init__(self, parent: _Optional[str] = ..., action: _Optional[str] = ..., event_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., execution_id: _Optional[str] = ..., resume_token: _Optional[str] = ...) -> None: ...

class CancelExecutionRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetryExecutionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeadLetterFilter(_message.Message):
    __slots__ = ("action", "error_type", "start_time", "end_time")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    action: str
    error_type: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, action: _Optional[str] = ..., error_type: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: DeadLetterFilter
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[_Union[DeadLetterFilter, _Mapping]] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RequeueDeadLettersRequest(_message.Message):
    __slots__ = ("parent", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    filter: DeadLetterFilter
    def __init__(self, parent: _Optional[str] = ..., filter: _Optional[_Union[DeadLetterFilter, _Mapping]] = ...) -> None: ...

class RequeueDeadLettersResponse(_message.Message):
    __slots__ = ("requeued_count",)
    REQUEUED_COUNT_FIELD_NUMBER: _ClassVar[int]
    requeued_count: int
    def __init__(self, requeued_count: _Optional[int] = ...) -> None: ...

class PauseExecutionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeExecutionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
