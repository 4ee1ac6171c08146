"""The HTTP surface's pure parts: the CloudEvents binding, webhook sources and signatures,
problem details. No server, no I/O beyond a secret file."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from neoactions.domain.errors import InvalidArgument, NotFound, ResourceExhausted, Unauthenticated
from neoactions.server.web import cloudevents_http as ce
from neoactions.server.web.problems import http_status, problem_of
from neoactions.server.web.webhooks import delivery_event, load_sources, verify

ENVELOPE = {"specversion": "1.0", "id": "1", "source": "/s", "type": "a.b"}


def test_binary_mode_decodes_headers_and_maps_extensions() -> None:
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "42",
        "ce-source": "/x",
        "ce-type": "orders.created",
        "ce-subject": "100%25%20sure",
        "ce-idempotencykey": "k-1",
        "ce-region": "eu",
    }
    [msg] = ce.parse_binary(headers, b'{"a": 1}', headers["content-type"])
    assert (msg.id, msg.subject, msg.idempotency_key) == ("42", "100% sure", "k-1")
    assert json.loads(msg.metadata_json) == {"cloudevents": {"region": "eu"}}
    assert json.loads(msg.data_json) == {"a": 1}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({**ENVELOPE, "specversion": "0.3"}, "specversion"),
        ({**ENVELOPE, "data": [1, 2]}, "data"),
        ({**ENVELOPE, "data_base64": "AAA="}, "data_base64"),
        ({**ENVELOPE, "datacontenttype": "text/xml"}, "datacontenttype"),
        ({**ENVELOPE, "time": "yesterday"}, "time"),
        ({**ENVELOPE, "subject": {"nested": True}}, "subject"),
        ({k: v for k, v in ENVELOPE.items() if k != "id"}, "id"),
    ],
)
def test_structured_refusals_name_the_attribute(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        ce.parse_structured(json.dumps(doc).encode())
    assert caught.value.violations[0].field == field


def test_batch_limits_and_paths() -> None:
    body = json.dumps([ENVELOPE, {**ENVELOPE, "type": ""}]).encode()
    with pytest.raises(InvalidArgument) as caught:
        ce.parse_batch(body, 10)
    assert caught.value.violations[0].field == "[1].type"
    with pytest.raises(InvalidArgument, match="at most 1 events"):
        ce.parse_batch(json.dumps([ENVELOPE, ENVELOPE]).encode(), 1)
    with pytest.raises(InvalidArgument) as caught:
        ce.parse({"content-type": "text/plain"}, b"x", 10)
    assert caught.value.reason == "UNSUPPORTED_MEDIA_TYPE" and http_status(caught.value) == 415


def test_problem_statuses() -> None:
    assert http_status(InvalidArgument.field("x", "y", reason="PAYLOAD_TOO_LARGE")) == 413
    assert http_status(NotFound("gone")) == 404
    assert http_status(ResourceExhausted("slow down")) == 429
    response = problem_of(Unauthenticated("no key"))
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert response.media_type == "application/problem+json"


def test_webhook_sources_need_a_secret_out_of_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret_file or secret_env"):
        load_sources({"gh": {"tenant": "t", "event_type": "a.b", "scheme": "github"}})
    with pytest.raises(ValueError, match="scheme"):
        load_sources({"gh": {"tenant": "t", "event_type": "a.b", "scheme": "svix", "secret_env": "X"}})
    with pytest.raises(ValueError, match="unknown keys secret"):
        load_sources({"gh": {"tenant": "t", "event_type": "a.b", "scheme": "github", "secret": "inline"}})
    (tmp_path / "s").write_text("not-a-whsec")
    with pytest.raises(ValueError, match="Standard Webhooks secret"):
        load_sources(
            {
                "b": {
                    "tenant": "t",
                    "event_type": "a.b",
                    "scheme": "standard-webhooks",
                    "secret_file": str(tmp_path / "s"),
                }
            }
        )


def test_github_signature_and_event_name(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("topsecret\n")
    source = load_sources(
        {"gh": {"tenant": "t", "event_type": "gh.{event}", "scheme": "github", "secret_file": str(tmp_path / "s")}}
    )["gh"]
    assert "topsecret" not in repr(source)
    body = b'{"action": "opened"}'
    good = {
        "x-hub-signature-256": "sha256=" + hmac.new(b"topsecret", body, hashlib.sha256).hexdigest(),
        "x-github-delivery": "d-1",
        "x-github-event": "Pull-Request",
    }
    assert verify(source, good, body) == "d-1"
    with pytest.raises(Unauthenticated):
        verify(source, {**good, "x-hub-signature-256": "sha256=" + "0" * 64}, body)
    msg = delivery_event(source, good, body, "d-1")
    assert (msg.type, msg.source, msg.id) == ("gh.pull_request", "webhooks/gh", "d-1")
