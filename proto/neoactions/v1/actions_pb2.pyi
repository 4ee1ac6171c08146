import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_CRITICAL: _ClassVar[Priority]

class ExecutionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_MODE_UNSPECIFIED: _ClassVar[ExecutionMode]
    EXECUTION_MODE_SYNC: _ClassVar[ExecutionMode]
    EXECUTION_MODE_ASYNC: _ClassVar[ExecutionMode]
    EXECUTION_MODE_QUEUED: _ClassVar[ExecutionMode]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_NORMAL: Priority
PRIORITY_HIGH: Priority
PRIORITY_CRITICAL: Priority
EXECUTION_MODE_UNSPECIFIED: ExecutionMode
EXECUTION_MODE_SYNC: ExecutionMode
EXECUTION_MODE_ASYNC: ExecutionMode
EXECUTION_MODE_QUEUED: ExecutionMode

class Condition(_message.Message):
    __slots__ = ("field", "operator", "value", "all", "any", "negate", "cel")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    NEGATE_FIELD_NUMBER: _ClassVar[int]
    CEL_FIELD_NUMBER: _ClassVar[int]
    field: str
    operator: str
    value: _struct_pb2.Value
    all: _containers.RepeatedCompositeFieldContainer[Condition]
    any: _containers.RepeatedCompositeFieldContainer[Condition]
    negate: Condition
    cel: str
    def __init__(self, field: _Optional[str] = ..., operator: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., all: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., any: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., negate: _Optional[_Union[Condition, _Mapping]] = ..., cel: _Optional[str] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("event_types", "conditions", "context_filters", "event_pattern")
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FILTERS_FIELD_NUMBER: _ClassVar[int]
    EVENT_PATTERN_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    context_filters: _struct_pb2.Struct
    event_pattern: _struct_pb2.Struct
    def __init__(self, event_types: _Optional[_Iterable[str]] = ..., conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., context_filters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_pattern: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Handler(_message.Message):
    __slots__ = ("type", "config", "version")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    type: str
    config: _struct_pb2.Struct
    version: str
    def __init__(self, type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_retries", "backoff", "initial_delay_ms", "max_delay_ms", "jitter", "max_age_seconds")
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_retries: int
    backoff: str
    initial_delay_ms: int
    max_delay_ms: int
    jitter: bool
    max_age_seconds: float
    def __init__(self, max_retries: _Optional[int] = ..., backoff: _Optional[str] = ..., initial_delay_ms: _Optional[int] = ..., max_delay_ms: _Optional[int] = ..., jitter: _Optional[bool] = ..., max_age_seconds: _Optional[float] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("per_minute", "per_hour")
    PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    per_minute: int
    per_hour: int
    def __init__(self, per_minute: _Optional[int] = ..., per_hour: _Optional[int] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("name", "uid", "description", "trigger", "handler", "priority", "execution_mode", "timeout_seconds", "retry_policy", "rate_limit", "max_concurrency", "enabled", "tags", "version", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MODE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    description: str
    trigger: Trigger
    handler: Handler
    priority: Priority
    execution_mode: ExecutionMode
    timeout_seconds: float
    retry_policy: RetryPolicy
    rate_limit: RateLimit
    max_concurrency: int
    enabled: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., description: _Optional[str] = ..., trigger: _Optional[_Union[Trigger, _Mapping]] = ..., handler: _Optional[_Union[Handler, _Mapping]] = ..., priority: _Optional[_Union[Priority, str]] = ..., execution_mode: _Optional[_Union[ExecutionMode, str]] = ..., timeout_seconds: _Optional[float] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., enabled: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateActionRequest(_message.Message):
    __slots__ = ("parent", "action_id", "action", "validate_only")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    action_id: str
    action: Action
    validate_only: bool
    def __init__(self, parent: _Optional[str] = ..., action_id: _Optional[str] = ..., action: _Optional[_Union[Action, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class GetActionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListActionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "enabled", "handler_type", "tag", "search")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    enabled: bool
    handler_type: str
    tag: str
    search: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., enabled: _Optional[bool] = ..., handler_type: _Optional[str] = ..., tag: _Optional[str] = ..., search: _Optional[str] = ...) -> None: ...

class ListActionsResponse(_message.Message):
    __slots__ = ("actions", "next_page_token")
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    next_page_token: str
    def __init__(self, actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateActionRequest(_message.Message):
    __slots__ = ("action", "update_mask", "validate_only", "expected_version")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    action: Action
    update_mask: _field_mask_pb2.FieldMask
    validate_only: bool
    expected_version: int
    def __init__(self, action: _Optional[_Union[Action, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., validate_only: _Optional[bool] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteActionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteActionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnableActionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DisableActionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TestEvent(_message.Message):
    __slots__ = ("type", "source", "subject", "data_json", "metadata_json", "correlation_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    source: str
    subject: str
    data_json: str
    metadata_json: str
    correlation_id: str
    def __init__(self, type: _Optional[str] = ..., source: _Optional[str] = ..., subject: _Optional[str] = ..., data_json: _Optional[str] = ..., metadata_json: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class TestActionRequest(_message.Message):
    __slots__ = ("parent", "event", "action", "execute")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EXECUTE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    event: TestEvent
    action: str
    execute: bool
    def __init__(self, parent: _Optional[str] = ..., event: _Optional[_Union[TestEvent, _Mapping]] = ..., action: _Optional[str] = ..., execute: _Optional[bool] = ...) -> None: ...

class PatternOutcome(_message.Message):
    __slots__ = ("pattern", "matched")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    matched: bool
    def __init__(self, pattern: _Optional[str] = ..., matched: _Optional[bool] = ...) -> None: ...

class ConditionOutcome(_message.Message):
    __slots__ = ("location", "kind", "matched", "field", "operator", "expected_json", "actual_json", "present", "error", "children")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_JSON_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_JSON_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    location: str
    kind: str
    matched: bool
    field: str
    operator: str
    expected_json: str
    actual_json: str
    present: bool
    error: str
    children: _containers.RepeatedCompositeFieldContainer[ConditionOutcome]
    def __init__(self, location: _Optional[str] = ..., kind: _Optional[str] = ..., matched: _Optional[bool] = ..., field: _Optional[str] = ..., operator: _Optional[str] = ..., expected_json: _Optional[str] = ..., actual_json: _Optional[str] = ..., present: _Optional[bool] = ..., error: _Optional[str] = ..., children: _Optional[_Iterable[_Union[ConditionOutcome, _Mapping]]] = ...) -> None: ...

class ActionTestResult(_message.Message):
    __slots__ = ("action", "matched", "reason", "enabled", "priority", "patterns", "conditions", "error", "execution", "execution_status", "output_json")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    action: str
    matched: bool
    reason: str
    enabled: bool
    priority: Priority
    patterns: _containers.RepeatedCompositeFieldContainer[PatternOutcome]
    conditions: _containers.RepeatedCompositeFieldContainer[ConditionOutcome]
    error: str
    execution: str
    execution_status: str
    output_json: str
    def __init__(self, action: _Optional[str] = ..., matched: _Optional[bool] = ..., reason: _Optional[str] = ..., enabled: _Optional[bool] = ..., priority: _Optional[_Union[Priority, str]] = ..., patterns: _Optional[_Iterable[_Union[PatternOutcome, _Mapping]]] = ..., conditions: _Optional[_Iterable[_Union[ConditionOutcome, _Mapping]]] = ..., error: _Optional[str] = ..., execution: _Optional[str] = ..., execution_status: _Optional[str] = ..., output_json: _Optional[str] = ...) -> None: ...

class TestActionResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ActionTestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ActionTestResult, _Mapping]]] = ...) -> None: ...
