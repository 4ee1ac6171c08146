import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetActionStatsRequest(_message.Message):
    __slots__ = ("name", "start_time", "end_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ActionStats(_message.Message):
    __slots__ = ("action", "start_time", "end_time", "count", "succeeded", "failed", "cancelled", "dead_lettered", "success_rate", "avg_duration_seconds", "p50_duration_seconds", "p95_duration_seconds", "p99_duration_seconds", "throughput_per_second", "last_error_type", "last_error_message", "last_error_time", "truncated")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P50_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P95_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P99_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_TIME_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    action: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    count: int
    succeeded: int
    failed: int
    cancelled: int
    dead_lettered: int
    success_rate: float
    avg_duration_seconds: float
    p50_duration_seconds: float
    p95_duration_seconds: float
    p99_duration_seconds: float
    throughput_per_second: float
    last_error_type: str
    last_error_message: str
    last_error_time: _timestamp_pb2.Timestamp
    truncated: bool
    def __init__(self, action: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., count: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., success_rate: _Optional[float] = ..., avg_duration_seconds: _Optional[float] = ..., p50_duration_seconds: _Optional[float] = ..., p95_duration_seconds: _Optional[float] = ..., p99_duration_seconds: _Optional[float] = ..., throughput_per_second: _Optional[float] = ..., last_error_type: _Optional[str] = ..., last_error_message: _Optional[str] = ..., last_error_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class GetOverviewRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Overview(_message.Message):
    __slots__ = ("tenant", "total", "actions", "health")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    total: ActionStats
    actions: _containers.RepeatedCompositeFieldContainer[ActionStats]
    health: _containers.RepeatedCompositeFieldContainer[ActionHealth]
    def __init__(self, tenant: _Optional[str] = ..., total: _Optional[_Union[ActionStats, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[ActionStats, _Mapping]]] = ..., health: _Optional[_Iterable[_Union[ActionHealth, _Mapping]]] = ...) -> None: ...

class GetActionHealthRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ActionHealth(_message.Message):
    __slots__ = ("action", "level", "reason", "stats")
    class Level(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        LEVEL_UNSPECIFIED: _ClassVar[ActionHealth.Level]
        HEALTHY: _ClassVar[ActionHealth.Level]
        DEGRADED: _ClassVar[ActionHealth.Level]
        CRITICAL: _ClassVar[ActionHealth.Level]
    LEVEL_UNSPECIFIED: ActionHealth.Level
    HEALTHY: ActionHealth.Level
    DEGRADED: ActionHealth.Level
    CRITICAL: ActionHealth.Level
    ACTION_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    action: str
    level: ActionHealth.Level
    reason: str
    stats: ActionStats
    def __init__(self, action: _Optional[str] = ..., level: _Optional[_Union[ActionHealth.Level, str]] = ..., reason: _Optional[str] = ..., stats: _Optional[_Union[ActionStats, _Mapping]] = ...) -> None: ...
