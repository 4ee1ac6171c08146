"""What the server keeps of an installed plugin version (the store's record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neoactions.domain.model import utcnow

#: a version that takes new executions
ACTIVE = "active"


@dataclass(slots=True)
class InstalledPlugin:
    """One installed version of a plugin: its signed manifest, what the operator granted,
    where it came from and the digest of its artifact (stored beside it)."""

    name: str
    version: str
    #: the manifest as installed (signature included), a JSON object
    manifest: dict[str, Any]
    artifact_sha256: str
    #: capabilities granted at install: ``net:HOST``, ``secret:NAME``
    grants: list[str] = field(default_factory=list)
    registry: str = ""
    #: the id of the key that signed the manifest (``""``: installed unsigned)
    signed_by: str = ""
    installed_by: str = ""
    installed_at: datetime = field(default_factory=utcnow)
    status: str = ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "artifact_sha256": self.artifact_sha256,
            "grants": list(self.grants),
            "registry": self.registry,
            "signed_by": self.signed_by,
            "installed_by": self.installed_by,
            "installed_at": self.installed_at.isoformat(),
            "status": self.status,
            "manifest": self.manifest,
        }


__all__ = ["ACTIVE", "InstalledPlugin"]
