"""The ``lambda`` handler config: its JSON Schema and deeper checks."""

from __future__ import annotations

from neoactions.domain.errors import Violations
from neoactions.domain.model import JSONObject
from neoactions.sandboxes.http.schema import templated, url_problem

INVOCATION_TYPES = ["RequestResponse", "Event", "DryRun"]

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lambda handler config",
    "type": "object",
    "required": ["function_name"],
    "additionalProperties": False,
    "properties": {
        "function_name": {
            "type": "string",
            "minLength": 1,
            "description": "a function name, partial ARN or full ARN",
        },
        "qualifier": {"type": "string", "minLength": 1, "description": "version or alias"},
        "invocation_type": {"enum": INVOCATION_TYPES, "default": "RequestResponse"},
        "region": {"type": "string", "description": "default: AWS_REGION / AWS_DEFAULT_REGION"},
        "endpoint_url": {
            "type": "string",
            "description": "default: https://lambda.<region>.amazonaws.com",
        },
        "payload": {"description": "the event the function receives; default: the input data"},
        "client_context": {"type": "object", "description": "RequestResponse only"},
        "log_tail": {
            "type": "boolean",
            "default": False,
            "description": "stream the last 4 KB of the function's log",
        },
        "credentials": {
            "type": "object",
            "description": "default: botocore's chain (environment, shared files, roles)",
            "required": ["access_key_id", "secret_access_key"],
            "additionalProperties": False,
            "properties": {
                "access_key_id": {"type": "string", "minLength": 1},
                "secret_access_key": {"type": "string", "minLength": 1},
                "session_token": {"type": "string"},
            },
        },
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 900},
    },
}


def validate_config(config: JSONObject) -> None:
    """Checks a schema cannot say, on values that hold no template."""
    problems = Violations()
    endpoint = config.get("endpoint_url")
    if endpoint is not None and not templated(endpoint):
        problem = url_problem(str(endpoint))
        if problem:
            problems.add("endpoint_url", problem)
    if "client_context" in config and config.get("invocation_type", "RequestResponse") != "RequestResponse":
        problems.add("client_context", "client_context is only sent with RequestResponse invocations")
    problems.raise_if_any("invalid lambda handler config")


__all__ = ["CONFIG_SCHEMA", "INVOCATION_TYPES", "validate_config"]
