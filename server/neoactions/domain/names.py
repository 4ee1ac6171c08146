"""AIP resource names: ``tenants/{tenant}``, ``tenants/{tenant}/actions/{action}``,
``tenants/{tenant}/events/{id}``, ``tenants/{tenant}/executions/{id}``."""

from __future__ import annotations

import re

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.ids import is_uuid

#: a tenant's slug, matched whole (``\Z``: ``$`` would let a trailing newline through)
TENANT_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,40}\Z")
#: the longest resource name accepted (``tenants/{41}/actions/{100}`` and ids fit well within)
MAX_NAME_LENGTH = 256


def _shown(name: str) -> str:
    """``name`` for an error message: quoted, and cut short when long."""
    return repr(name) if len(name) <= 80 else f"{name[:80]!r}... ({len(name)} characters)"


def is_tenant_slug(slug: str) -> bool:
    return TENANT_SLUG.match(slug) is not None


def tenant_name(tenant: str) -> str:
    return f"tenants/{tenant}"


def action_name(tenant: str, action: str) -> str:
    return f"tenants/{tenant}/actions/{action}"


def event_name(tenant: str, event_id: str) -> str:
    return f"tenants/{tenant}/events/{event_id}"


def execution_name(tenant: str, execution_id: str) -> str:
    return f"tenants/{tenant}/executions/{execution_id}"


def parse_tenant(name: str, field: str = "parent") -> str:
    """``tenants/{tenant}`` → tenant."""
    prefix, _, slug = name.partition("/")
    if prefix != "tenants" or not is_tenant_slug(slug):
        raise InvalidArgument.field(
            field, f"expected tenants/{{tenant}}, got {_shown(name)}", reason="INVALID_RESOURCE_NAME"
        )
    return slug


def parse_child(name: str, collection: str, field: str = "name") -> tuple[str, str]:
    """``tenants/{tenant}/{collection}/{id}`` → (tenant, id)."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument.field(
            field, f"is {len(name)} characters; a resource name has at most {MAX_NAME_LENGTH}", reason="FIELD_TOO_LONG"
        )
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != collection or not parts[3]:
        raise InvalidArgument.field(
            field,
            f"expected tenants/{{tenant}}/{collection}/{{id}}, got {_shown(name)}",
            reason="INVALID_RESOURCE_NAME",
        )
    if not is_tenant_slug(parts[1]):
        raise InvalidArgument.field(field, f"invalid tenant in {_shown(name)}", reason="INVALID_RESOURCE_NAME")
    if collection in ("events", "executions") and not is_uuid(parts[3]):
        raise InvalidArgument.field(field, f"{_shown(parts[3])} is not a valid id", reason="INVALID_RESOURCE_NAME")
    return parts[1], parts[3]


def parse_action_ref(ref: str, tenant: str, field: str = "action") -> str:
    """An action given as its full resource name (same tenant) or just its name."""
    if "/" not in ref:
        return ref
    ref_tenant, action = parse_child(ref, "actions", field)
    if ref_tenant != tenant:
        raise InvalidArgument.field(field, "the action belongs to another tenant than parent")
    return action
