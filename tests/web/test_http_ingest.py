"""HTTP ingest on a real server: the CloudEvents HTTP binding (structured, batch, binary) and
signed webhooks store events exactly as ``PublishEvents`` does; refusals are problem JSON and
store nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import httpx
from google.protobuf import timestamp_pb2
from standardwebhooks.webhooks import Webhook

from neoactions.client import AsyncClient
from neoactions.v1 import events_pb2, events_pb2_grpc
from tests.web.conftest import (
    GITHUB_SECRET,
    STANDARD_SECRET,
    WebServerProcess,
    auth_headers,
    fresh_tenant,
    grpc_channel,
)

STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
COMPARED = (
    "type",
    "source",
    "subject",
    "aggregate_type",
    "aggregate_id",
    "time",
    "data",
    "metadata",
    "correlation_id",
    "causation_id",
    "idempotency_key",
    "tenant",
)


def cloudevent(**extra: object) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "/shop/orders",
        "type": "orders.created",
        "subject": "order-17",
        "time": "2026-03-01T12:30:00.250Z",
        "datacontenttype": "application/json",
        "data": {"amount": 120, "note": "<b>café</b>"},
        **extra,
    }


def assert_problem(response: httpx.Response, status: int, reason: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["reason"] == reason, body
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    return dict(body)


async def grpc_publish(target: str, tenant: str, event: events_pb2.Event) -> events_pb2.PublishEventResponse:
    async with grpc_channel(target) as ch:
        stub = events_pb2_grpc.EventServiceStub(ch)
        return await stub.PublishEvent(events_pb2.PublishEventRequest(parent=f"tenants/{tenant}", event=event))


def stored_fields(client_event: object) -> dict[str, object]:
    return {k: getattr(client_event, k) for k in COMPARED}


async def test_structured_event_is_stored_as_grpc_stores_it(
    web_server: WebServerProcess, http: httpx.AsyncClient
) -> None:
    async with fresh_tenant(web_server.target) as client:
        ce = cloudevent(
            correlationid="corr-1", causationid="cause-1", aggregatetype="order", aggregateid="17", traceparent="00-ab"
        )
        response = await http.post(
            f"/v1/tenants/{client.tenant}/events", content=json.dumps(ce), headers={**STRUCTURED, **auth_headers()}
        )
        assert response.status_code == 202, response.text
        [result] = response.json()["results"]
        assert result["duplicate"] is False
        via_http = await client.get_event(result["event"]["id"])

        # the same envelope through gRPC (another producer id, so it is not a duplicate)
        msg = events_pb2.Event(
            id="other-" + str(ce["id"]),
            type="orders.created",
            source="/shop/orders",
            subject="order-17",
            data_json=json.dumps(ce["data"]),
            metadata_json=json.dumps({"cloudevents": {"traceparent": "00-ab"}}),
            correlation_id="corr-1",
            causation_id="cause-1",
            aggregate_type="order",
            aggregate_id="17",
        )
        stamp = timestamp_pb2.Timestamp()
        stamp.FromJsonString("2026-03-01T12:30:00.250Z")
        msg.time.CopyFrom(stamp)
        via_grpc = await client.get_event((await grpc_publish(web_server.target, client.tenant, msg)).event.id)
        assert stored_fields(via_http) == stored_fields(via_grpc)
        assert via_http.time == datetime(2026, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)

        # source + id is the dedup key of both doors: the gRPC redelivery is the HTTP event
        msg.id = str(ce["id"])
        again = await grpc_publish(web_server.target, client.tenant, msg)
        assert again.duplicate and again.event.id == via_http.id
        response = await http.post(
            f"/v1/tenants/{client.tenant}/events", content=json.dumps(ce), headers={**STRUCTURED, **auth_headers()}
        )
        assert response.json()["results"][0] == {**result, "duplicate": True}


async def test_batch_and_binary_modes(web_server: WebServerProcess, http: httpx.AsyncClient) -> None:
    async with fresh_tenant(web_server.target) as client:
        batch = [cloudevent(type="orders.created"), cloudevent(type="orders.paid", idempotencykey="pay-1")]
        response = await http.post(
            f"/v1/tenants/{client.tenant}/events", content=json.dumps(batch), headers={**BATCH, **auth_headers()}
        )
        assert response.status_code == 202, response.text
        ids = [r["event"]["id"] for r in response.json()["results"]]
        stored = [await client.get_event(i) for i in ids]
        assert [e.type for e in stored] == ["orders.created", "orders.paid"]
        assert stored[1].idempotency_key == "pay-1"

        binary = {
            "content-type": "application/json; charset=utf-8",
            "ce-specversion": "1.0",
            "ce-id": "b-1",
            "ce-source": "/shop/payments",
            "ce-type": "payments.settled",
            "ce-subject": "caf%C3%A9 %22latte%22",
            "ce-time": "2026-03-02T08:00:00Z",
            "ce-correlationid": "corr-b",
            "ce-tenantregion": "eu",
            **auth_headers(),
        }
        response = await http.post(f"/v1/tenants/{client.tenant}/events", content=b'{"amount": 5}', headers=binary)
        assert response.status_code == 202, response.text
        event = await client.get_event(response.json()["results"][0]["event"]["id"])
        assert (event.type, event.source, event.subject, event.correlation_id) == (
            "payments.settled",
            "/shop/payments",
            'café "latte"',
            "corr-b",
        )
        assert event.data == {"amount": 5} and event.metadata == {"cloudevents": {"tenantregion": "eu"}}
        assert len((await client.list_events()).items) == 3


async def test_refusals_are_problems_and_store_nothing(web_server: WebServerProcess, http: httpx.AsyncClient) -> None:
    async with fresh_tenant(web_server.target) as client:
        url = f"/v1/tenants/{client.tenant}/events"
        key = auth_headers()
        assert_problem(await http.post(url, content=b"{not json", headers={**STRUCTURED, **key}), 400, "MALFORMED_JSON")
        body = assert_problem(
            await http.post(url, content=json.dumps(cloudevent(type="Not A Type")), headers={**STRUCTURED, **key}),
            400,
            "INVALID_EVENT_TYPE",
        )
        missing = {k: v for k, v in cloudevent().items() if k != "source"}
        body = assert_problem(
            await http.post(url, content=json.dumps(missing), headers={**STRUCTURED, **key}), 400, "INVALID_ARGUMENT"
        )
        assert body["errors"] == [{"field": "source", "description": "is required by CloudEvents 1.0"}]
        huge = cloudevent(data={"blob": "x" * (300 * 1024)})
        assert_problem(
            await http.post(url, content=json.dumps(huge), headers={**STRUCTURED, **key}), 413, "PAYLOAD_TOO_LARGE"
        )
        near = cloudevent(data={"blob": "x" * (256 * 1024 + 10)})  # under the body cap, over the event limit
        assert_problem(
            await http.post(url, content=json.dumps(near), headers={**STRUCTURED, **key}), 413, "PAYLOAD_TOO_LARGE"
        )
        assert_problem(
            await http.post(url, content=b"hello", headers={"content-type": "text/plain", **key}),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        good = json.dumps(cloudevent())
        assert_problem(await http.post(url, content=good, headers=STRUCTURED), 401, "API_KEY_MISSING")
        wrong = await http.post(url, content=good, headers={**STRUCTURED, **auth_headers("nak_wrong.key")})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        assert wrong.json()["status"] == 401
        assert_problem(
            await http.post("/v1/tenants/no_such_tenant/events", content=good, headers={**STRUCTURED, **key}),
            404,
            "TENANT_NOT_FOUND",
        )
        assert (await client.list_events()).items == []


def _standard_delivery(body: bytes, msg_id: str, secret: str = STANDARD_SECRET) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


async def test_signed_webhooks_become_events_once(web_server: WebServerProcess, http: httpx.AsyncClient) -> None:
    async with AsyncClient(web_server.target, tenant="hooks", timeout=30) as client:
        before = len((await client.list_events(page_size=1000)).items)
        body = json.dumps({"type": "Invoice.Paid", "data": {"invoice": "in_1", "total": 42}}).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        first = await http.post("/v1/webhooks/billing", content=body, headers=_standard_delivery(body, msg_id))
        assert first.status_code == 202, first.text
        event = await client.get_event(first.json()["event"]["id"])
        assert (event.type, event.source) == ("billing.invoice.paid", "webhooks/billing")
        assert event.data == {"type": "Invoice.Paid", "data": {"invoice": "in_1", "total": 42}}
        assert event.metadata == {
            "webhook": {"source": "billing", "scheme": "standard-webhooks", "event": "Invoice.Paid"}
        }
        again = await http.post("/v1/webhooks/billing", content=body, headers=_standard_delivery(body, msg_id))
        assert again.json()["duplicate"] is True and again.json()["event"]["id"] == event.id

        gh_body = json.dumps({"ref": "refs/heads/main", "pusher": {"name": "ada"}}).encode()
        signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), gh_body, hashlib.sha256).hexdigest()
        gh = {"content-type": "application/json", "x-github-event": "push", "x-github-delivery": uuid.uuid4().hex}
        response = await http.post(
            "/v1/webhooks/github", content=gh_body, headers={**gh, "x-hub-signature-256": signature}
        )
        assert response.status_code == 202, response.text
        assert (await client.get_event(response.json()["event"]["id"])).type == "github.push"

        # refused: a wrong signature (each scheme), a tampered body, an unknown source; nothing stored
        bad = _standard_delivery(body, f"msg_{uuid.uuid4().hex}", "whsec_" + "A" * 32)
        assert_problem(await http.post("/v1/webhooks/billing", content=body, headers=bad), 401, "BAD_SIGNATURE")
        assert_problem(
            await http.post(
                "/v1/webhooks/github", content=gh_body + b" ", headers={**gh, "x-hub-signature-256": signature}
            ),
            401,
            "BAD_SIGNATURE",
        )
        assert_problem(await http.post("/v1/webhooks/github", content=gh_body, headers=gh), 401, "BAD_SIGNATURE")
        assert_problem(await http.post("/v1/webhooks/nope", content=body), 404, "WEBHOOK_SOURCE_NOT_FOUND")
        assert len((await client.list_events(page_size=1000)).items) == before + 2


async def test_openapi_document(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/v1/tenants/{tenant}/events", "/v1/webhooks/{source}"}
    assert response.headers["x-content-type-options"] == "nosniff"
    missing = await http.get("/v1/nothing-here")
    assert_problem(missing, 404, "NOT_FOUND")
