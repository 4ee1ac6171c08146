import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("name", "version", "description", "config_schema_json", "capabilities")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    description: str
    config_schema_json: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., config_schema_json: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ...) -> None: ...

class ExecutionContext(_message.Message):
    __slots__ = ("tenant", "execution_id", "action", "action_version", "attempt", "idempotency_key", "deadline", "trace_context", "correlation_id", "event_id", "event_type")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    execution_id: str
    action: str
    action_version: int
    attempt: int
    idempotency_key: str
    deadline: _timestamp_pb2.Timestamp
    trace_context: _containers.ScalarMap[str, str]
    correlation_id: str
    event_id: str
    event_type: str
    def __init__(self, tenant: _Optional[str] = ..., execution_id: _Optional[str] = ..., action: _Optional[str] = ..., action_version: _Optional[int] = ..., attempt: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_context: _Optional[_Mapping[str, str]] = ..., correlation_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("config_json", "input_json", "context")
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    config_json: str
    input_json: str
    context: ExecutionContext
    def __init__(self, config_json: _Optional[str] = ..., input_json: _Optional[str] = ..., context: _Optional[_Union[ExecutionContext, _Mapping]] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("level", "message")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    level: str
    message: str
    def __init__(self, level: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ProgressUpdate(_message.Message):
    __slots__ = ("fraction", "message")
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    message: str
    def __init__(self, fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class ExecuteResult(_message.Message):
    __slots__ = ("output_json",)
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    output_json: str
    def __init__(self, output_json: _Optional[str] = ...) -> None: ...

class ExecuteError(_message.Message):
    __slots__ = ("type", "message", "stack", "retryable")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    stack: str
    retryable: bool
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., stack: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class ExecuteUpdate(_message.Message):
    __slots__ = ("log", "progress", "result", "error")
    LOG_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    log: LogLine
    progress: ProgressUpdate
    result: ExecuteResult
    error: ExecuteError
    def __init__(self, log: _Optional[_Union[LogLine, _Mapping]] = ..., progress: _Optional[_Union[ProgressUpdate, _Mapping]] = ..., result: _Optional[_Union[ExecuteResult, _Mapping]] = ..., error: _Optional[_Union[ExecuteError, _Mapping]] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("status", "message")
    class ServingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SERVING_STATUS_UNSPECIFIED: _ClassVar[CheckResponse.ServingStatus]
        SERVING_STATUS_SERVING: _ClassVar[CheckResponse.ServingStatus]
        SERVING_STATUS_NOT_SERVING: _ClassVar[CheckResponse.ServingStatus]
    SERVING_STATUS_UNSPECIFIED: CheckResponse.ServingStatus
    SERVING_STATUS_SERVING: CheckResponse.ServingStatus
    SERVING_STATUS_NOT_SERVING: CheckResponse.ServingStatus
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: CheckResponse.ServingStatus
    message: str
    def __init__(self, status: _Optional[_Union[CheckResponse.ServingStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...
