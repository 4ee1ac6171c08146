"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from neoactions.server.web.cloudevents_http import BATCH, STRUCTURED
from neoactions.server.web.problems import PROBLEM_JSON

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problems(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Invalid request (malformed JSON, a missing or invalid attribute)",
        401: "Missing, wrong or revoked API key; or a webhook signature that does not verify",
        403: "The key's role may not publish",
        404: "Unknown tenant or webhook source",
        413: "The body or one event is over the limit",
        415: "Not a CloudEvents or JSON request",
        429: "Over a limit",
        503: "The store or queue is unreachable; retry",
    }
    return {str(s): {"description": words[s], "content": {PROBLEM_JSON: {"schema": _PROBLEM}}} for s in statuses}


_CLOUDEVENT = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "description": "with source, what deduplicates a redelivery"},
        "source": {"type": "string"},
        "type": {"type": "string", "description": "dot notation, lowercase segments of [a-z0-9_]"},
        "subject": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "description": "JSON only"},
        "data": {"type": "object"},
        "correlationid": {"type": "string"},
        "causationid": {"type": "string"},
        "idempotencykey": {"type": "string"},
        "aggregatetype": {"type": "string"},
        "aggregateid": {"type": "string"},
    },
    "additionalProperties": {"description": "other extensions go to metadata.cloudevents"},
}

_PUBLISHED = {
    "type": "object",
    "properties": {
        "event": {
            "type": "object",
            "properties": {k: {"type": "string"} for k in ("name", "id", "type", "source", "time")},
        },
        "duplicate": {"type": "boolean"},
        "executions": {
            "type": "array",
            "items": {"type": "object", "properties": {k: {"type": "string"} for k in ("id", "action", "status")}},
        },
    },
}


def document(server_url: str = "/") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "neoactions HTTP API",
            "version": "1",
            "description": "CloudEvents ingest and signed webhooks. The full API is gRPC (neoactions.v1).",
        },
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "CloudEvent": _CLOUDEVENT,
                "Published": _PUBLISHED,
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details",
                    "properties": {
                        "type": {"type": "string", "format": "uri"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "reason": {"type": "string", "description": "the stable error reason"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
        "paths": {
            "/v1/tenants/{tenant}/events": {
                "post": {
                    "operationId": "publishCloudEvents",
                    "summary": "Publish CloudEvents (structured, batch or binary mode)",
                    "security": [{"apiKey": []}],
                    "parameters": [{"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            STRUCTURED: {"schema": {"$ref": "#/components/schemas/CloudEvent"}},
                            BATCH: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/CloudEvent"}}},
                            "application/json": {
                                "schema": {"type": "object"},
                                "description": "binary mode: the data, with ce-specversion, ce-id, ce-source, "
                                "ce-type (and optional ce-*) headers",
                            },
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted and stored (or a duplicate of an accepted event)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "results": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Published"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **_problems(400, 401, 403, 404, 413, 415, 429, 503),
                    },
                }
            },
            "/v1/webhooks/{source}": {
                "post": {
                    "operationId": "receiveWebhook",
                    "summary": "A signed delivery of a configured webhook source (Standard Webhooks or GitHub)",
                    "parameters": [{"name": "source", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "202": {
                            "description": "Accepted",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Published"}}},
                        },
                        **_problems(400, 401, 404, 413, 429, 503),
                    },
                }
            },
        },
    }


__all__ = ["document"]
