"""The ``lambda`` handler type: AWS Lambda ``Invoke`` (RequestResponse, Event, DryRun).

Requests are SigV4-signed with botocore and sent with the same SSRF-guarded,
pooled httpx client as ``http`` (a configurable ``endpoint_url`` is tenant
input too). A function that raised (``X-Amz-Function-Error``) is a
``lambda_function_error``; the API refusing the call is a
``lambda_service_error``, retryable when throttled or on Lambda's 5xx.
"""

from __future__ import annotations

from neoactions.sandboxes.aws_lambda.invoke import invoke_url, sign_invoke
from neoactions.sandboxes.aws_lambda.runner import LambdaRunner
from neoactions.sandboxes.aws_lambda.schema import CONFIG_SCHEMA, validate_config
from neoactions.sandboxes.http.guard import AddressPolicy
from neoactions.server.runners import HandlerRegistry, HandlerType


def register(registry: HandlerRegistry) -> None:
    """Add the ``lambda`` handler type."""
    runner = LambdaRunner(AddressPolicy.from_settings(registry.settings))
    registry.register(
        HandlerType(
            name="lambda",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="AWS Lambda Invoke, SigV4-signed",
            validate=validate_config,
            close=runner.aclose,
            sensitive_config_paths=frozenset(
                {"credentials.access_key_id", "credentials.secret_access_key", "credentials.session_token"}
            ),
        )
    )


__all__ = ["CONFIG_SCHEMA", "LambdaRunner", "invoke_url", "register", "sign_invoke", "validate_config"]
