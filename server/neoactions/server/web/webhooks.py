"""Signed inbound webhooks → events: one configured source per ``POST /v1/webhooks/{source}``.

A source (setting ``webhook_sources``) names the tenant its deliveries go to, the event type
they become and how the sender signs them: ``standard-webhooks`` (the ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` headers, verified with the ``standardwebhooks``
package, timestamps older or newer than five minutes refused) or ``github``
(``X-Hub-Signature-256``: HMAC-SHA256 of the body). The secret comes from a file
(``secret_file``) or an environment variable (``secret_env``), never from the settings
themselves, and is never logged or shown.

A delivery becomes an event of type ``event_type`` (``{event}`` in it is replaced by GitHub's
``X-GitHub-Event`` or a Standard Webhooks payload's ``type``), ``source`` ``webhooks/<name>``,
the delivery id as its producer id (a redelivery is accepted once, within the deduplication
window), the body as its data and ``metadata.webhook`` saying where it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from neoactions.domain.errors import InvalidArgument, Unauthenticated
from neoactions.v1 import events_pb2

SCHEMES = ("standard-webhooks", "github")
_KEYS = frozenset({"tenant", "event_type", "scheme", "secret_file", "secret_env"})
_SEGMENT = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class WebhookSource:
    name: str
    tenant: str
    event_type: str
    scheme: str
    secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookSource({self.name!r}, tenant={self.tenant!r}, scheme={self.scheme!r})"


def _secret(name: str, spec: Mapping[str, Any]) -> str:
    if spec.get("secret_file"):
        try:
            secret = Path(str(spec["secret_file"])).read_text().strip()
        except OSError as exc:
            raise ValueError(f"webhook_sources.{name}.secret_file: cannot read it: {exc.strerror}") from None
    elif spec.get("secret_env"):
        secret = os.environ.get(str(spec["secret_env"]), "").strip()
        if not secret:
            raise ValueError(f"webhook_sources.{name}.secret_env: the variable {spec['secret_env']} is not set")
    else:
        raise ValueError(f"webhook_sources.{name}: set secret_file or secret_env (the secret is never inline)")
    if not secret:
        raise ValueError(f"webhook_sources.{name}: the secret is empty")
    return secret


def load_sources(config: Mapping[str, Any]) -> dict[str, WebhookSource]:
    """The configured sources with their secrets read; ``ValueError`` naming a bad setting."""
    out: dict[str, WebhookSource] = {}
    for name, spec in config.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"webhook_sources.{name}: expected a mapping")
        unknown = set(spec) - _KEYS
        if unknown:
            raise ValueError(f"webhook_sources.{name}: unknown keys {', '.join(sorted(unknown))}")
        scheme = str(spec.get("scheme", ""))
        if scheme not in SCHEMES:
            raise ValueError(f"webhook_sources.{name}.scheme: must be one of {', '.join(SCHEMES)}")
        if not spec.get("tenant") or not spec.get("event_type"):
            raise ValueError(f"webhook_sources.{name}: tenant and event_type are required")
        secret = _secret(name, spec)
        if scheme == "standard-webhooks":
            try:
                Webhook(secret)
            except Exception:
                raise ValueError(f"webhook_sources.{name}: not a Standard Webhooks secret (whsec_...)") from None
        out[name] = WebhookSource(name, str(spec["tenant"]), str(spec["event_type"]), scheme, secret)
    return out


def _event_name(raw: Any) -> str:
    """A sender's event name as dot-separated type segments (``pull_request`` stays)."""
    text = str(raw or "").lower()
    segments = [_SEGMENT.sub("_", s).strip("_") for s in text.split(".")]
    return ".".join(s for s in segments if s) or "unknown"


def verify(source: WebhookSource, headers: Mapping[str, str], body: bytes) -> str:
    """Check the delivery's signature; returns the delivery id. ``Unauthenticated`` otherwise."""
    if source.scheme == "github":
        sent = headers.get("x-hub-signature-256", "")
        expected = "sha256=" + hmac.new(source.secret.encode(), body, hashlib.sha256).hexdigest()
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Unauthenticated("the X-Hub-Signature-256 signature does not match", reason="BAD_SIGNATURE")
        return headers.get("x-github-delivery", "")
    try:
        Webhook(source.secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        raise Unauthenticated(f"the webhook signature does not verify: {exc}", reason="BAD_SIGNATURE") from None
    return headers.get("webhook-id", "")


def delivery_event(
    source: WebhookSource, headers: Mapping[str, str], body: bytes, delivery_id: str
) -> events_pb2.Event:
    """A verified delivery as the protobuf event a producer would publish."""
    try:
        data = json.loads(body) if body.strip() else {}
    except (RecursionError, ValueError) as exc:
        raise InvalidArgument.field("body", f"malformed JSON: {exc}", reason="MALFORMED_JSON") from None
    if not isinstance(data, dict):
        raise InvalidArgument.field("body", "a webhook delivery must be a JSON object", reason="MALFORMED_JSON")
    sender_event = headers.get("x-github-event", "") if source.scheme == "github" else data.get("type", "")
    webhook: dict[str, Any] = {"source": source.name, "scheme": source.scheme}
    if sender_event:
        webhook["event"] = str(sender_event)[:256]
    return events_pb2.Event(
        type=source.event_type.replace("{event}", _event_name(sender_event)),
        source=f"webhooks/{source.name}",
        id=delivery_id,
        data_json=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        metadata_json=json.dumps({"webhook": webhook}, ensure_ascii=False, separators=(",", ":")),
    )


__all__ = ["SCHEMES", "WebhookSource", "delivery_event", "load_sources", "verify"]
