"""CloudEvents 1.0 in structured JSON mode ⇄ neoactions events.

A CloudEvent maps to an event field by field: ``type``, ``source``, ``subject``, ``time`` and
``data`` (a JSON object) to the same fields; ``id`` is the producer's id, which with
``source`` deduplicates a redelivery; every other attribute (``specversion``,
``datacontenttype``, ``dataschema`` and every extension) is kept, with ``id``, under the
event's ``metadata.cloudevents``, so :func:`from_event` gives the same document back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from neoactions.domain import convert
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import Event
from neoactions.v1 import events_pb2

#: where the attributes that have no event field of their own are kept
METADATA_KEY = "cloudevents"
SPEC_VERSION = "1.0"
_REQUIRED = ("id", "source", "specversion", "type")
_MAPPED = frozenset({"id", "source", "specversion", "type", "subject", "time", "data"})
_ATTRIBUTE = re.compile(r"^[a-z0-9]{1,20}$")
_JSON_TYPES = ("application/json", "text/json")


def _is_json(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base in _JSON_TYPES or base.endswith("+json")


def to_event_pb(doc: Any, path: str = "cloudevent") -> events_pb2.Event:
    """A publishable event from one CloudEvent (a JSON object, structured mode)."""
    if not isinstance(doc, Mapping):
        raise InvalidArgument.field(path, "a CloudEvent is a JSON object")
    for key in _REQUIRED:
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidArgument.field(f"{path}.{key}", "required: a non-empty string")
    if doc["specversion"] != SPEC_VERSION:
        raise InvalidArgument.field(f"{path}.specversion", f"must be {SPEC_VERSION!r}")
    if "data_base64" in doc:
        raise InvalidArgument.field(f"{path}.data_base64", "binary data is not accepted: send JSON data")
    content_type = doc.get("datacontenttype", "application/json")
    if not isinstance(content_type, str) or not _is_json(content_type):
        raise InvalidArgument.field(f"{path}.datacontenttype", "must be a JSON media type (application/json)")
    data = doc.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidArgument.field(f"{path}.data", "must be a JSON object")
    kept: dict[str, Any] = {"id": doc["id"], "specversion": doc["specversion"]}
    for key, value in doc.items():
        if key in _MAPPED:
            continue
        if not _ATTRIBUTE.match(key):
            raise InvalidArgument.field(f"{path}.{key}", "attribute names are 1 to 20 lowercase letters or digits")
        kept[key] = value
    time = None
    if "time" in doc:
        raw = doc["time"]
        try:
            time = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument.field(f"{path}.time", "must be an RFC 3339 timestamp") from None
        if time.tzinfo is None:
            raise InvalidArgument.field(f"{path}.time", "must carry its offset (Z or +hh:mm)")
    subject = doc.get("subject", "")
    if not isinstance(subject, str):
        raise InvalidArgument.field(f"{path}.subject", "must be a string")
    return events_pb2.Event(
        id=doc["id"],
        type=doc["type"],
        source=doc["source"],
        subject=subject,
        time=convert.ts(time),
        data_json=convert.encode_json(dict(data), f"{path}.data"),
        metadata_json=convert.encode_json({METADATA_KEY: kept}, f"{path}"),
    )


def parse(text: str, path: str = "cloudevent") -> list[events_pb2.Event]:
    """One CloudEvent (a JSON object) or a batch (a JSON array of them)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument.field(path, f"not JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(doc, list):
        if not doc:
            raise InvalidArgument.field(path, "an empty batch")
        return [to_event_pb(d, f"{path}[{i}]") for i, d in enumerate(doc)]
    return [to_event_pb(doc, path)]


def from_event(event: Event) -> dict[str, Any]:
    """A stored event as a CloudEvent: the document it was published as, for one published so;
    for any other, its fields with the event's id, ``application/json`` data and, when the
    event names no source, ``/tenants/{tenant}``."""
    kept = event.metadata.get(METADATA_KEY) if isinstance(event.metadata, dict) else None
    kept = dict(kept) if isinstance(kept, dict) else {}
    doc: dict[str, Any] = {
        "specversion": kept.pop("specversion", SPEC_VERSION),
        "id": kept.pop("id", event.id),
        "source": event.source or f"/tenants/{event.tenant}",
        "type": event.type,
    }
    if event.subject:
        doc["subject"] = event.subject
    doc["time"] = event.time.isoformat().replace("+00:00", "Z")
    if "datacontenttype" not in kept:
        doc["datacontenttype"] = "application/json"
    doc.update(kept)
    doc["data"] = event.data
    return doc


__all__ = ["METADATA_KEY", "from_event", "parse", "to_event_pb"]
