"""SSRF guard: which addresses an action may make the service connect to.

Action configs come from tenants, so a URL in one is untrusted: without a guard a
tenant could make the service call the cloud metadata endpoint, an admin port on
loopback or anything on the private network. The guard resolves a host name
**once**, refuses the connection if any resolved address is in a forbidden range
(unless the operator allow-listed that network), and then connects to the very
address it checked. Connecting by name after checking would let a DNS rebinding
answer swap in a private address between the check and the connect.

The check lives in an httpcore network backend, underneath httpx's connection
pool, so it covers every new connection, including redirects that are followed,
while the URL (so the ``Host`` header, TLS SNI and certificate check) keeps the
original host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import httpcore
import httpx

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

#: where cloud providers serve instance metadata and credentials (AWS, GCP, Azure, ...)
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})

#: the settings key an operator lists allowed networks under (CIDRs)
ALLOW_SETTING = "http_allow_networks"


class AddressRefused(Exception):
    """A connection was refused by the guard; ``str()`` names the address and why."""

    def __init__(self, address: str, reason: str, host: str = "") -> None:
        self.address = address
        self.reason = reason
        self.host = host
        via = f" (resolved from {host})" if host and host != address else ""
        super().__init__(f"refused: {address} is {reason}{via}")


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be connected to, or ``None`` if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # an address embedding an IPv4 one would otherwise smuggle it past the v4 checks
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped address"
        if ip.sixtofour is not None and refusal_reason(ip.sixtofour):
            return "a 6to4 address embedding a non-public IPv4 address"
        if ip.teredo is not None:
            return "a Teredo address"
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        # e.g. carrier-grade NAT (100.64.0.0/10): not private by the RFC, not public either
        return "a non-public address"
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The forbidden ranges minus the networks the operator allow-listed."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_networks(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AddressPolicy:
        """Read ``http_allow_networks`` (a list of CIDRs) from the service settings."""
        value = settings.get(ALLOW_SETTING, [])
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        return cls.from_networks(value)

    def check(self, ip: IPAddress, host: str = "") -> None:
        """Raise :class:`AddressRefused` unless ``ip`` may be connected to."""
        # an allow-listed network wins over every category: that is the operator's call
        if any(ip.version == net.version and ip in net for net in self.allow):
            return
        reason = refusal_reason(ip)
        if reason is not None:
            raise AddressRefused(display(ip), reason, host)

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses, all of them checked.

        Every address must pass: a name that resolves to a public and a private
        address is refused rather than filtered, as such a name is suspicious.
        """
        literal = _parse_ip(host)
        if literal is not None:
            self.check(literal)
            return [str(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
        addresses: list[str] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            ip = ipaddress.ip_address(sockaddr[0])
            self.check(ip, host)
            if str(ip) not in addresses:
                addresses.append(str(ip))
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        return addresses


def display(ip: IPAddress) -> str:
    """The address as people write it (Python < 3.13 prints ``::ffff:7f00:1`` for ``::ffff:127.0.0.1``)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._policy.resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                # connecting to the checked IP literal: no second lookup can rebind it
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, "a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a :class:`GuardedBackend`.

    httpx does not take a network backend, so the pool it built is replaced by
    an identical one that has ours (httpx is pinned below 1.0 for this).
    """

    def __init__(self, policy: AddressPolicy, *, max_connections: int = 100, max_keepalive: int = 20) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy),
        )


def guarded_client(
    policy: AddressPolicy,
    *,
    max_connections: int = 100,
    max_keepalive: int = 20,
    user_agent: str = "neoactions",
) -> httpx.AsyncClient:
    """One pooled client whose every connection passes the guard.

    ``trust_env=False``: an ``HTTP_PROXY`` from the environment would make the
    proxy, not the guard, choose where the connection goes.
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, max_connections=max_connections, max_keepalive=max_keepalive),
        trust_env=False,
        follow_redirects=False,
        max_redirects=5,
        headers={"user-agent": user_agent},
    )


__all__ = [
    "ALLOW_SETTING",
    "METADATA_ADDRESSES",
    "AddressPolicy",
    "AddressRefused",
    "GuardedBackend",
    "GuardedTransport",
    "guarded_client",
    "refusal_reason",
]
