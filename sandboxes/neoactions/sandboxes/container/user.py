"""The ``user`` a container runs as: parsed to numbers, never root (uid 0) nor the root group (gid 0).

Docker reads ``user`` leniently: ``00`` and ``0000:0000`` are uid 0, a bare
``1000`` gets gid 0 when the image's ``/etc/passwd`` has no such user, and a
name means whatever the image's ``/etc/passwd`` says. So the service never
hands Docker the action's text: it parses it here and passes ``uid:gid`` as
two plain decimal numbers.

Only numeric users are accepted. A name could be shown non-root only by
reading the image's ``/etc/passwd`` and ``/etc/group`` before every run (the
image behind a tag can change), so names are refused at save with a hint to
give the numbers instead. A bare ``uid`` runs with the group of the same
number (``1000`` is ``1000:1000``), never with Docker's default group 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the largest id accepted (Linux ids are 32-bit; Docker and some tools treat them as signed)
MAX_ID = 2**31 - 1

_NUMERIC = re.compile(r"^([0-9]+)(?::([0-9]+))?$")


class UserRefused(ValueError):
    """The ``user`` text is not a numeric, non-root ``uid[:gid]``; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class ContainerUser:
    """A numeric, non-root user and group."""

    uid: int
    gid: int

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


def parse_user(text: str) -> ContainerUser:
    """``uid`` or ``uid:gid`` (decimal) as numbers; raises :class:`UserRefused`.

    Refused: names, uid 0 or gid 0 however written (``0``, ``00``, ``0000:0000``,
    ``65534:0``), ids above :data:`MAX_ID`, anything else.
    """
    text = text.strip()
    match = _NUMERIC.match(text)
    if match is None:
        if re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$", text):
            raise UserRefused(
                f"{text!r} is a name; give numbers (uid or uid:gid, e.g. 65534:65534), "
                "as names cannot be checked against the image before the run"
            )
        raise UserRefused(f"{text!r} is not uid or uid:gid (decimal numbers, e.g. 65534:65534)")
    uid = int(match.group(1))
    gid = int(match.group(2)) if match.group(2) is not None else uid
    if uid == 0:
        raise UserRefused("containers never run as root (uid 0); give another uid, e.g. 65534:65534")
    if gid == 0:
        raise UserRefused("containers never run with the root group (gid 0); give another gid, e.g. 65534:65534")
    if uid > MAX_ID or gid > MAX_ID:
        raise UserRefused(f"ids must be at most {MAX_ID}")
    return ContainerUser(uid, gid)


__all__ = ["MAX_ID", "ContainerUser", "UserRefused", "parse_user"]
