"""The CloudEvents 1.0 HTTP binding → publishable events, exactly as ``PublishEvents`` takes them.

Three modes: *structured* (``application/cloudevents+json``: one envelope), *batch*
(``application/cloudevents-batch+json``: a list of envelopes) and *binary* (attributes in
``ce-*`` headers, the data as the body). Each envelope becomes the protobuf ``Event`` a gRPC
producer would send, and then goes through the same conversion and checks
(:func:`neoactions.domain.convert.event_from_pb`), so an event is stored the same whichever door
it came through. The mapping:

- ``id`` → the producer's id (with ``source``, what deduplicates a redelivery), ``source``,
  ``type``, ``subject``, ``time`` → the event's fields of those names;
- ``data`` (a JSON object; absent: ``{}``) → the event's data; ``data_base64`` is refused:
  events carry JSON;
- the extensions ``correlationid``, ``causationid``, ``idempotencykey``, ``aggregatetype`` and
  ``aggregateid`` → the event's fields of those names; any other extension (and
  ``dataschema``) → ``metadata.cloudevents.<name>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from google.protobuf import timestamp_pb2

from neoactions.domain.errors import InvalidArgument
from neoactions.v1 import events_pb2

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSION = "1.0"

#: extensions that are fields of an event
EXTENSION_FIELDS = {
    "correlationid": "correlation_id",
    "causationid": "causation_id",
    "idempotencykey": "idempotency_key",
    "aggregatetype": "aggregate_type",
    "aggregateid": "aggregate_id",
}
_CONTEXT = ("id", "source", "type", "subject")
_NOT_EXTENSIONS = frozenset({"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"})
_MAX_EXTENSIONS = 64


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media in ("", "application/json", "text/json") or media.endswith("+json")


def _text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidArgument.field(path, f"must be a string, got {type(value).__name__}")
    return str(value)


def _time(value: str, path: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    try:
        stamp.FromJsonString(value)
    except ValueError:
        raise InvalidArgument.field(path, f"not an RFC 3339 time: {value[:64]!r}", reason="INVALID_TIMESTAMP") from None
    return stamp


def _envelope(attrs: Mapping[str, Any], data_json: str, path: str, sep: str = ".") -> events_pb2.Event:
    """The protobuf event of one envelope's attributes (``data`` already encoded)."""

    def where(name: str) -> str:
        return f"{path}{sep}{name}" if path else name

    version = attrs.get("specversion")
    if version != SPEC_VERSION:
        raise InvalidArgument.field(where("specversion"), f"must be {SPEC_VERSION!r}, got {version!r}")
    for required in ("id", "source", "type"):
        if not attrs.get(required):
            raise InvalidArgument.field(where(required), "is required by CloudEvents 1.0")
    msg = events_pb2.Event(data_json=data_json)
    for name in _CONTEXT:
        if name in attrs:
            setattr(msg, name, _text(attrs[name], where(name)))
    if attrs.get("time"):
        msg.time.CopyFrom(_time(_text(attrs["time"], where("time")), where("time")))
    content_type = attrs.get("datacontenttype")
    if content_type is not None and not is_json(media_type(_text(content_type, where("datacontenttype")))):
        raise InvalidArgument.field(
            where("datacontenttype"), f"events carry JSON data, not {content_type!r}", reason="UNSUPPORTED_MEDIA_TYPE"
        )
    extras: dict[str, Any] = {}
    for name, value in attrs.items():
        if name in _NOT_EXTENSIONS or name == "data_base64":
            continue
        if name in EXTENSION_FIELDS:
            setattr(msg, EXTENSION_FIELDS[name], _text(value, where(name)))
        else:
            extras[name] = value
    if len(extras) > _MAX_EXTENSIONS:
        raise InvalidArgument.field(path or "event", f"at most {_MAX_EXTENSIONS} extensions")
    if extras:
        msg.metadata_json = json.dumps({"cloudevents": extras}, ensure_ascii=False, separators=(",", ":"))
    return msg


def _dump(data: Any, path: str) -> str:
    if data is None:
        return ""
    if not isinstance(data, dict):
        raise InvalidArgument.field(path, "must be a JSON object", reason="MALFORMED_JSON")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _load(body: bytes, path: str) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidArgument.field(path, "nests too deeply", reason="MALFORMED_JSON") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise InvalidArgument.field(path, f"malformed JSON: {exc}", reason="MALFORMED_JSON") from None


def structured_event(doc: Any, path: str = "") -> events_pb2.Event:
    """One structured-mode envelope (a parsed JSON object)."""
    if not isinstance(doc, dict):
        raise InvalidArgument.field(path or "body", "a CloudEvent must be a JSON object", reason="MALFORMED_JSON")
    if "data_base64" in doc:
        raise InvalidArgument.field(
            f"{path}.data_base64" if path else "data_base64",
            "events carry a JSON object as data, not binary data",
            reason="UNSUPPORTED_MEDIA_TYPE",
        )
    return _envelope(doc, _dump(doc.get("data"), f"{path}.data" if path else "data"), path)


def parse_structured(body: bytes) -> list[events_pb2.Event]:
    return [structured_event(_load(body, "body"))]


def parse_batch(body: bytes, max_events: int) -> list[events_pb2.Event]:
    docs = _load(body, "body")
    if not isinstance(docs, list):
        raise InvalidArgument.field("body", "a batch must be a JSON array of CloudEvents", reason="MALFORMED_JSON")
    if not docs:
        raise InvalidArgument.field("body", "at least one event is required")
    if len(docs) > max_events:
        raise InvalidArgument.field("body", f"at most {max_events} events per batch")
    return [structured_event(doc, f"[{i}]") for i, doc in enumerate(docs)]


def parse_binary(headers: Mapping[str, str], body: bytes, content_type: str) -> list[events_pb2.Event]:
    """Binary mode: ``ce-*`` headers (percent-decoded) are the attributes, the body the data."""
    attrs: dict[str, Any] = {}
    for key, value in headers.items():
        lower = key.lower()
        if lower.startswith("ce-") and len(lower) > 3:
            attrs[lower[3:]] = unquote(value)
    if "specversion" not in attrs:
        raise InvalidArgument.field(
            "content-type",
            f"send {STRUCTURED}, {BATCH}, or JSON data with ce-specversion, ce-id, ce-source and ce-type headers",
            reason="UNSUPPORTED_MEDIA_TYPE",
        )
    media = media_type(content_type)
    if not is_json(media):
        raise InvalidArgument.field(
            "content-type", f"events carry JSON data, not {media!r}", reason="UNSUPPORTED_MEDIA_TYPE"
        )
    attrs.pop("datacontenttype", None)
    data = _load(body, "body") if body.strip() else None
    return [_envelope(attrs, _dump(data, "body"), "ce", sep="-")]


def parse(headers: Mapping[str, str], body: bytes, max_events: int) -> tuple[list[events_pb2.Event], bool]:
    """The events of one request in whichever mode it is; ``True`` with a batch."""
    media = media_type(headers.get("content-type", ""))
    if media == BATCH:
        return parse_batch(body, max_events), True
    if media == STRUCTURED:
        return parse_structured(body), False
    return parse_binary(headers, body, headers.get("content-type", "")), False


__all__ = ["BATCH", "EXTENSION_FIELDS", "STRUCTURED", "parse", "parse_batch", "parse_binary", "parse_structured"]
