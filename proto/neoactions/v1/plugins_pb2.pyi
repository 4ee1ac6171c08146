import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PluginHandlerType(_message.Message):
    __slots__ = ("name", "kind", "description", "config_schema_json", "examples_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    description: str
    config_schema_json: str
    examples_json: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., config_schema_json: _Optional[str] = ..., examples_json: _Optional[str] = ...) -> None: ...

class Plugin(_message.Message):
    __slots__ = ("name", "version", "versions", "builtin", "description", "kind", "handler_types", "requested_capabilities", "granted_capabilities", "registry", "signed_by", "installed_by", "install_time", "license", "homepage", "manifest_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPES_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    GRANTED_CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    SIGNED_BY_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_BY_FIELD_NUMBER: _ClassVar[int]
    INSTALL_TIME_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    HOMEPAGE_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    builtin: bool
    description: str
    kind: str
    handler_types: _containers.RepeatedCompositeFieldContainer[PluginHandlerType]
    requested_capabilities: _containers.RepeatedScalarFieldContainer[str]
    granted_capabilities: _containers.RepeatedScalarFieldContainer[str]
    registry: str
    signed_by: str
    installed_by: str
    install_time: _timestamp_pb2.Timestamp
    license: str
    homepage: str
    manifest_json: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., builtin: _Optional[bool] = ..., description: _Optional[str] = ..., kind: _Optional[str] = ..., handler_types: _Optional[_Iterable[_Union[PluginHandlerType, _Mapping]]] = ..., requested_capabilities: _Optional[_Iterable[str]] = ..., granted_capabilities: _Optional[_Iterable[str]] = ..., registry: _Optional[str] = ..., signed_by: _Optional[str] = ..., installed_by: _Optional[str] = ..., install_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., license: _Optional[str] = ..., homepage: _Optional[str] = ..., manifest_json: _Optional[str] = ...) -> None: ...

class RegistryPlugin(_message.Message):
    __slots__ = ("registry", "name", "description", "versions", "latest", "kind", "handler_types", "installed_version")
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HANDLER_TYPES_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_VERSION_FIELD_NUMBER: _ClassVar[int]
    registry: str
    name: str
    description: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    latest: str
    kind: str
    handler_types: _containers.RepeatedScalarFieldContainer[str]
    installed_version: str
    def __init__(self, registry: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., latest: _Optional[str] = ..., kind: _Optional[str] = ..., handler_types: _Optional[_Iterable[str]] = ..., installed_version: _Optional[str] = ...) -> None: ...

class SearchRegistryRequest(_message.Message):
    __slots__ = ("query", "registry")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    query: str
    registry: str
    def __init__(self, query: _Optional[str] = ..., registry: _Optional[str] = ...) -> None: ...

class SearchRegistryResponse(_message.Message):
    __slots__ = ("plugins", "unreachable_registries")
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_REGISTRIES_FIELD_NUMBER: _ClassVar[int]
    plugins: _containers.RepeatedCompositeFieldContainer[RegistryPlugin]
    unreachable_registries: _containers.RepeatedCompositeFieldContainer[UnreachableRegistry]
    def __init__(self, plugins: _Optional[_Iterable[_Union[RegistryPlugin, _Mapping]]] = ..., unreachable_registries: _Optional[_Iterable[_Union[UnreachableRegistry, _Mapping]]] = ...) -> None: ...

class UnreachableRegistry(_message.Message):
    __slots__ = ("registry", "message")
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    registry: str
    message: str
    def __init__(self, registry: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ListPluginsRequest(_message.Message):
    __slots__ = ("installed_only", "page_size", "page_token")
    INSTALLED_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    installed_only: bool
    page_size: int
    page_token: str
    def __init__(self, installed_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPluginsResponse(_message.Message):
    __slots__ = ("plugins", "next_page_token")
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    plugins: _containers.RepeatedCompositeFieldContainer[Plugin]
    next_page_token: str
    def __init__(self, plugins: _Optional[_Iterable[_Union[Plugin, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPluginRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class InstallPluginRequest(_message.Message):
    __slots__ = ("name", "version", "registry", "grants")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    registry: str
    grants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., registry: _Optional[str] = ..., grants: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdatePluginRequest(_message.Message):
    __slots__ = ("name", "version", "grants")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    grants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., grants: _Optional[_Iterable[str]] = ...) -> None: ...

class UninstallPluginRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class UninstallPluginResponse(_message.Message):
    __slots__ = ("removed_versions", "disabled_actions")
    REMOVED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    removed_versions: _containers.RepeatedScalarFieldContainer[str]
    disabled_actions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, removed_versions: _Optional[_Iterable[str]] = ..., disabled_actions: _Optional[_Iterable[str]] = ...) -> None: ...
