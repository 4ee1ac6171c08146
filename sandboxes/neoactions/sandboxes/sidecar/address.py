"""Where a sidecar action may make the service connect: the http runner's address policy, or the operator's list.

A sidecar ``address`` comes from a tenant's action, so without a check a tenant
could point the service at loopback (admin ports, the service itself), a unix
socket on the host, or anything on the private network. The same policy as the
``http`` runner's SSRF guard applies (:class:`~neoactions.sandboxes.http.guard.AddressPolicy`,
allow-listed networks in ``http_allow_networks``): a host name is resolved once,
every address it resolves to must pass, and the channel connects to the checked
IP literal, so a second lookup cannot rebind it. Unix sockets are refused.

The operator may list endpoints in ``sidecar_endpoints``; an action whose
``address`` is one of them (the same text) connects there unchecked, which is the
way to offer a handler on loopback or on a unix socket without opening whole
networks to every action.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpcore

from neoactions.sandboxes.http.guard import ALLOW_SETTING, AddressPolicy, AddressRefused

#: the runner setting listing addresses actions may use whatever the policy says
ENDPOINTS_SETTING = "sidecar_endpoints"

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._\-]+)):(?P<port>[0-9]{1,5})$")


class SidecarAddressRefused(Exception):
    """The policy refuses the address; ``str()`` says why and how an operator would allow it."""


class SidecarUnresolvable(Exception):
    """The host name did not resolve (reported like any unreachable handler)."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int
    #: the host is an IP literal
    literal: bool


def parse_address(address: str) -> HostPort | None:
    """``host:port`` or ``[ipv6]:port`` split up; ``None`` for ``unix:`` or anything else."""
    match = _HOST_PORT.match(address.strip())
    if match is None:
        return None
    port = int(match.group("port"))
    if not 0 < port < 65536:
        return None
    v6 = match.group("v6")
    if v6 is not None:
        try:
            ipaddress.IPv6Address(v6)
        except ValueError:
            return None
        return HostPort(v6, port, literal=True)
    host = str(match.group("host"))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return HostPort(host, port, literal=False)
    return HostPort(host, port, literal=True)


def grpc_target(ip: str, port: int) -> str:
    """The gRPC target naming exactly this IP (no name resolution in gRPC)."""
    if ipaddress.ip_address(ip).version == 6:
        return f"ipv6:[{ip}]:{port}"
    return f"ipv4:{ip}:{port}"


@dataclass(frozen=True, slots=True)
class SidecarPolicy:
    """The address policy plus the operator's registered endpoints."""

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    endpoints: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SidecarPolicy:
        """``http_allow_networks`` (CIDRs) and ``sidecar_endpoints`` (addresses) from the runner settings."""
        raw = settings.get(ENDPOINTS_SETTING, [])
        endpoints: Iterable[str] = raw.replace(",", " ").split() if isinstance(raw, str) else raw
        return cls(
            AddressPolicy.from_settings(settings), frozenset(str(e).strip() for e in endpoints if str(e).strip())
        )

    def check_saved(self, address: str) -> None:
        """What can be known before connecting: registered, or not a unix socket and no refused IP literal.

        Host names are checked when the connection is made (what they resolve to may change).
        """
        if address in self.endpoints:
            return
        if address.startswith("unix:"):
            raise SidecarAddressRefused(
                f"{address} is a unix socket; only endpoints the operator registered in {ENDPOINTS_SETTING} may be"
            )
        hp = parse_address(address)
        if hp is None:
            raise SidecarAddressRefused(f"{address!r} is not host:port, [ipv6]:port or a registered endpoint")
        if hp.literal:
            self._check_ip(hp.host)

    async def target(self, address: str) -> str:
        """The gRPC target to connect to for ``address``, every resolved address checked.

        Raises :class:`SidecarAddressRefused` or :class:`SidecarUnresolvable`.
        """
        if address in self.endpoints:
            return address
        self.check_saved(address)
        hp = parse_address(address)
        assert hp is not None
        if hp.literal:
            return grpc_target(hp.host, hp.port)
        try:
            resolved = await self.policy.resolve(hp.host, hp.port)
        except AddressRefused as exc:
            raise SidecarAddressRefused(_refusal(exc)) from None
        except (httpcore.ConnectError, OSError, UnicodeError) as exc:
            raise SidecarUnresolvable(str(exc)) from None
        return grpc_target(resolved[0], hp.port)

    def _check_ip(self, host: str) -> None:
        try:
            self.policy.check(ipaddress.ip_address(host))
        except AddressRefused as exc:
            raise SidecarAddressRefused(_refusal(exc)) from None


def _refusal(exc: AddressRefused) -> str:
    via = f" (resolved from {exc.host})" if exc.host and exc.host != exc.address else ""
    return (
        f"{exc.address} is {exc.reason}{via}; an operator can allow its network with {ALLOW_SETTING} "
        f"or register the address in {ENDPOINTS_SETTING}"
    )


__all__ = [
    "ENDPOINTS_SETTING",
    "HostPort",
    "SidecarAddressRefused",
    "SidecarPolicy",
    "SidecarUnresolvable",
    "grpc_target",
    "parse_address",
]
