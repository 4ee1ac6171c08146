from neoactions.v1 import actions_pb2 as _actions_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkflowSpec(_message.Message):
    __slots__ = ("variables", "steps", "error_handling", "output_json")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WorkflowVariable
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WorkflowVariable, _Mapping]] = ...) -> None: ...
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ERROR_HANDLING_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    variables: _containers.MessageMap[str, WorkflowVariable]
    steps: _containers.RepeatedCompositeFieldContainer[WorkflowStep]
    error_handling: WorkflowErrorHandling
    output_json: str
    def __init__(self, variables: _Optional[_Mapping[str, WorkflowVariable]] = ..., steps: _Optional[_Iterable[_Union[WorkflowStep, _Mapping]]] = ..., error_handling: _Optional[_Union[WorkflowErrorHandling, _Mapping]] = ..., output_json: _Optional[str] = ...) -> None: ...

class WorkflowVariable(_message.Message):
    __slots__ = ("type", "default_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    default_json: str
    def __init__(self, type: _Optional[str] = ..., default_json: _Optional[str] = ...) -> None: ...

class WorkflowStep(_message.Message):
    __slots__ = ("name", "handler", "action", "set_variable_json", "wait", "wait_until", "wait_for_event", "depends_on", "condition", "input_mapping_json", "for_each", "max_parallel", "retry_policy", "timeout")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SET_VARIABLE_JSON_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_UNTIL_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_EVENT_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    INPUT_MAPPING_JSON_FIELD_NUMBER: _ClassVar[int]
    FOR_EACH_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    handler: _actions_pb2.Handler
    action: str
    set_variable_json: str
    wait: str
    wait_until: str
    wait_for_event: WorkflowEventWait
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    condition: str
    input_mapping_json: str
    for_each: str
    max_parallel: int
    retry_policy: _actions_pb2.RetryPolicy
    timeout: str
    def __init__(self, name: _Optional[str] = ..., handler: _Optional[_Union[_actions_pb2.Handler, _Mapping]] = ..., action: _Optional[str] = ..., set_variable_json: _Optional[str] = ..., wait: _Optional[str] = ..., wait_until: _Optional[str] = ..., wait_for_event: _Optional[_Union[WorkflowEventWait, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ..., condition: _Optional[str] = ..., input_mapping_json: _Optional[str] = ..., for_each: _Optional[str] = ..., max_parallel: _Optional[int] = ..., retry_policy: _Optional[_Union[_actions_pb2.RetryPolicy, _Mapping]] = ..., timeout: _Optional[str] = ...) -> None: ...

class WorkflowEventWait(_message.Message):
    __slots__ = ("event_types", "conditions", "timeout")
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    conditions: _containers.RepeatedCompositeFieldContainer[_actions_pb2.Condition]
    timeout: str
    def __init__(self, event_types: _Optional[_Iterable[str]] = ..., conditions: _Optional[_Iterable[_Union[_actions_pb2.Condition, _Mapping]]] = ..., timeout: _Optional[str] = ...) -> None: ...

class WorkflowErrorHandling(_message.Message):
    __slots__ = ("mode", "dead_letter_action")
    MODE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_ACTION_FIELD_NUMBER: _ClassVar[int]
    mode: str
    dead_letter_action: str
    def __init__(self, mode: _Optional[str] = ..., dead_letter_action: _Optional[str] = ...) -> None: ...
