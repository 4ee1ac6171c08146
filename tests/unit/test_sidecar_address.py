"""Sidecar addresses pass the http runner's address policy or the operator's registered endpoints."""

from __future__ import annotations

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.sandboxes.sidecar.address import (
    SidecarAddressRefused,
    SidecarPolicy,
    grpc_target,
    parse_address,
)
from neoactions.sandboxes.sidecar.runner import SidecarRunner

DEFAULT = SidecarPolicy.from_settings({})


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:50051",  # loopback: admin ports, the service itself
        "[::1]:50051",
        "[::ffff:127.0.0.1]:50051",
        "0.0.0.0:50051",
        "10.0.0.7:9000",
        "192.168.1.1:80",
        "169.254.169.254:80",
        "100.64.0.1:80",
        "unix:/var/run/docker.sock",
        "unix:@abstract",
        "no-port",
        "h:0",
        "h:70000",
    ],
)
def test_refused_by_default(address: str) -> None:
    with pytest.raises(SidecarAddressRefused):
        DEFAULT.check_saved(address)


@pytest.mark.parametrize("address", ["93.184.216.34:50051", "[2606:4700::1111]:443", "handlers.example.com:50051"])
def test_public_addresses_and_names_pass_at_save(address: str) -> None:
    DEFAULT.check_saved(address)  # names are checked again at connect time


async def test_literals_connect_to_the_checked_ip() -> None:
    assert await DEFAULT.target("93.184.216.34:50051") == "ipv4:93.184.216.34:50051"
    assert await DEFAULT.target("[2606:4700::1111]:443") == "ipv6:[2606:4700::1111]:443"
    with pytest.raises(SidecarAddressRefused, match="loopback"):
        await DEFAULT.target("127.0.0.1:1")
    # not literals to ipaddress, but inet_aton reads them as loopback: the resolved address is checked
    for sneaky in ("127.1:50051", "127.0.0.01:50051", "0x7f000001:50051", "2130706433:50051"):
        with pytest.raises(SidecarAddressRefused, match="loopback"):
            await DEFAULT.target(sneaky)


async def test_allow_networks_is_the_http_runners_setting() -> None:
    policy = SidecarPolicy.from_settings({"http_allow_networks": ["127.0.0.0/8", "::1/128"]})
    policy.check_saved("127.0.0.1:50051")
    assert await policy.target("[::1]:7") == "ipv6:[::1]:7"
    with pytest.raises(SidecarAddressRefused):
        policy.check_saved("10.0.0.1:1")
    with pytest.raises(SidecarAddressRefused, match="unix socket"):
        policy.check_saved("unix:/tmp/h.sock")


async def test_registered_endpoints_pass_unchecked_as_written() -> None:
    policy = SidecarPolicy.from_settings({"sidecar_endpoints": "unix:/run/h.sock, 127.0.0.1:7000"})
    policy.check_saved("unix:/run/h.sock")
    assert await policy.target("unix:/run/h.sock") == "unix:/run/h.sock"
    assert await policy.target("127.0.0.1:7000") == "127.0.0.1:7000"
    for other in ("unix:/run/h.sock2", "127.0.0.1:7001"):
        with pytest.raises(SidecarAddressRefused):
            policy.check_saved(other)
    with pytest.raises(SidecarAddressRefused):
        await policy.target("127.0.0.01:7000")


def test_parse_address() -> None:
    assert parse_address("h.example:80") is not None
    assert parse_address("[::1]:80") is not None
    assert parse_address("[nonsense]:80") is None
    assert parse_address("unix:/x") is None
    assert grpc_target("::1", 5) == "ipv6:[::1]:5"


def test_validate_names_the_field() -> None:
    runner = SidecarRunner()
    with pytest.raises(InvalidArgument) as err:
        runner.validate({"address": "127.0.0.1:50051"})
    assert err.value.violations[0].field == "address"
    assert "http_allow_networks" in err.value.message and "sidecar_endpoints" in err.value.message
    runner.validate({"address": "93.184.216.34:50051"})
