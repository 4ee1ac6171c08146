import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from neoactions.v1 import actions_pb2 as _actions_pb2
from neoactions.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventFilter(_message.Message):
    __slots__ = ("type_pattern", "start_time", "end_time", "correlation_id", "source", "status", "event_ids")
    TYPE_PATTERN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    type_pattern: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    correlation_id: str
    source: str
    status: _events_pb2.EventStatus
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type_pattern: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_id: _Optional[str] = ..., source: _Optional[str] = ..., status: _Optional[_Union[_events_pb2.EventStatus, str]] = ..., event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReplayEventsRequest(_message.Message):
    __slots__ = ("parent", "filter", "actions", "dry_run", "sample_size", "events_per_second")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    parent: str
    filter: EventFilter
    actions: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    sample_size: int
    events_per_second: float
    def __init__(self, parent: _Optional[str] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., actions: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., sample_size: _Optional[int] = ..., events_per_second: _Optional[float] = ...) -> None: ...

class ActionReplayCount(_message.Message):
    __slots__ = ("action", "events", "sample_event_ids")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    action: str
    events: int
    sample_event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, action: _Optional[str] = ..., events: _Optional[int] = ..., sample_event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReplayEventsResponse(_message.Message):
    __slots__ = ("events_scanned", "actions", "replay")
    EVENTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    events_scanned: int
    actions: _containers.RepeatedCompositeFieldContainer[ActionReplayCount]
    replay: Replay
    def __init__(self, events_scanned: _Optional[int] = ..., actions: _Optional[_Iterable[_Union[ActionReplayCount, _Mapping]]] = ..., replay: _Optional[_Union[Replay, _Mapping]] = ...) -> None: ...

class ReplayActionProgress(_message.Message):
    __slots__ = ("action", "matched", "created")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    action: str
    matched: int
    created: int
    def __init__(self, action: _Optional[str] = ..., matched: _Optional[int] = ..., created: _Optional[int] = ...) -> None: ...

class Replay(_message.Message):
    __slots__ = ("name", "id", "state", "filter", "actions", "events_per_second", "events_scanned", "events_matched", "executions_created", "already_replayed", "action_progress", "error", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Replay.State]
        STATE_RUNNING: _ClassVar[Replay.State]
        STATE_SUCCEEDED: _ClassVar[Replay.State]
        STATE_FAILED: _ClassVar[Replay.State]
        STATE_CANCELLED: _ClassVar[Replay.State]
    STATE_UNSPECIFIED: Replay.State
    STATE_RUNNING: Replay.State
    STATE_SUCCEEDED: Replay.State
    STATE_FAILED: Replay.State
    STATE_CANCELLED: Replay.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    EVENTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_MATCHED_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_CREATED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_REPLAYED_FIELD_NUMBER: _ClassVar[int]
    ACTION_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    state: Replay.State
    filter: EventFilter
    actions: _containers.RepeatedScalarFieldContainer[str]
    events_per_second: float
    events_scanned: int
    events_matched: int
    executions_created: int
    already_replayed: int
    action_progress: _containers.RepeatedCompositeFieldContainer[ReplayActionProgress]
    error: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., state: _Optional[_Union[Replay.State, str]] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., actions: _Optional[_Iterable[str]] = ..., events_per_second: _Optional[float] = ..., events_scanned: _Optional[int] = ..., events_matched: _Optional[int] = ..., executions_created: _Optional[int] = ..., already_replayed: _Optional[int] = ..., action_progress: _Optional[_Iterable[_Union[ReplayActionProgress, _Mapping]]] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetReplayRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelReplayRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BacktestActionRequest(_message.Message):
    __slots__ = ("parent", "actions", "action_names", "filter", "sample_size", "near_miss_size", "max_events")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTION_NAMES_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEAR_MISS_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    parent: str
    actions: _containers.RepeatedCompositeFieldContainer[_actions_pb2.Action]
    action_names: _containers.RepeatedScalarFieldContainer[str]
    filter: EventFilter
    sample_size: int
    near_miss_size: int
    max_events: int
    def __init__(self, parent: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[_actions_pb2.Action, _Mapping]]] = ..., action_names: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[EventFilter, _Mapping]] = ..., sample_size: _Optional[int] = ..., near_miss_size: _Optional[int] = ..., max_events: _Optional[int] = ...) -> None: ...

class NearMiss(_message.Message):
    __slots__ = ("event_id", "explanation")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    explanation: _actions_pb2.ActionTestResult
    def __init__(self, event_id: _Optional[str] = ..., explanation: _Optional[_Union[_actions_pb2.ActionTestResult, _Mapping]] = ...) -> None: ...

class ActionBacktest(_message.Message):
    __slots__ = ("action", "matched", "type_matched", "sample_event_ids", "near_misses")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    TYPE_MATCHED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    NEAR_MISSES_FIELD_NUMBER: _ClassVar[int]
    action: str
    matched: int
    type_matched: int
    sample_event_ids: _containers.RepeatedScalarFieldContainer[str]
    near_misses: _containers.RepeatedCompositeFieldContainer[NearMiss]
    def __init__(self, action: _Optional[str] = ..., matched: _Optional[int] = ..., type_matched: _Optional[int] = ..., sample_event_ids: _Optional[_Iterable[str]] = ..., near_misses: _Optional[_Iterable[_Union[NearMiss, _Mapping]]] = ...) -> None: ...

class BacktestActionResponse(_message.Message):
    __slots__ = ("events_scanned", "results", "truncated", "elapsed")
    EVENTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    events_scanned: int
    results: _containers.RepeatedCompositeFieldContainer[ActionBacktest]
    truncated: bool
    elapsed: _duration_pb2.Duration
    def __init__(self, events_scanned: _Optional[int] = ..., results: _Optional[_Iterable[_Union[ActionBacktest, _Mapping]]] = ..., truncated: _Optional[bool] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Retention(_message.Message):
    __slots__ = ("name", "events", "executions", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    events: _duration_pb2.Duration
    executions: _duration_pb2.Duration
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., events: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., executions: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetRetentionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SetRetentionRequest(_message.Message):
    __slots__ = ("retention",)
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    retention: Retention
    def __init__(self, retention: _Optional[_Union[Retention, _Mapping]] = ...) -> None: ...
