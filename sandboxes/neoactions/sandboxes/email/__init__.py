"""The ``email`` handler type: SMTP with STARTTLS or implicit TLS, AUTH, to/cc/bcc.

Subject, text and html arrive rendered by the engine. Bcc recipients are in the
envelope only. The ``Message-ID`` is derived from the execution's idempotency
key, so a retried send carries the same id.
"""

from __future__ import annotations

from neoactions.sandboxes.email.message import Envelope, build_message
from neoactions.sandboxes.email.runner import EmailRunner
from neoactions.sandboxes.email.schema import CONFIG_SCHEMA, validate_config
from neoactions.server.runners import HandlerRegistry, HandlerType


def register(registry: HandlerRegistry) -> None:
    """Add the ``email`` handler type (one SMTP session per attempt, nothing to close)."""
    registry.register(
        HandlerType(
            name="email",
            runner=EmailRunner.from_settings(registry.settings),
            config_schema=CONFIG_SCHEMA,
            description="send an email over SMTP",
            validate=validate_config,
            sensitive_config_paths=frozenset({"password"}),
        )
    )


__all__ = ["CONFIG_SCHEMA", "EmailRunner", "Envelope", "build_message", "register", "validate_config"]
