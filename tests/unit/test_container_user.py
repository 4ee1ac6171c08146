"""The container ``user`` parser: numbers only, never uid 0 nor gid 0, however written."""

from __future__ import annotations

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.sandboxes.container.config import ContainerSpec, validate
from neoactions.sandboxes.container.user import MAX_ID, ContainerUser, UserRefused, parse_user


@pytest.mark.parametrize(
    ("text", "uid", "gid"),
    [
        ("65534:65534", 65534, 65534),
        ("1000", 1000, 1000),  # a bare uid gets the group of the same number, not Docker's gid 0
        ("0001000:01000", 1000, 1000),
        ("1:2", 1, 2),
        (f"{MAX_ID}:{MAX_ID}", MAX_ID, MAX_ID),
        (" 42:43 ", 42, 43),
    ],
)
def test_numeric_users_become_uid_and_gid(text: str, uid: int, gid: int) -> None:
    user = parse_user(text)
    assert user == ContainerUser(uid, gid)
    assert str(user) == f"{uid}:{gid}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0", "root (uid 0)"),
        ("00", "root (uid 0)"),
        ("0000:0000", "root (uid 0)"),
        ("0:65534", "root (uid 0)"),
        ("65534:0", "root group (gid 0)"),
        ("65534:000", "root group (gid 0)"),
        ("root", "is a name"),
        ("nobody", "is a name"),
        ("nobody:nogroup", "is a name"),
        ("1000:staff", "not uid or uid:gid"),
        ("root:0", "is a name"),
        ("", "not uid or uid:gid"),
        ("-1", "not uid or uid:gid"),
        ("+5", "not uid or uid:gid"),
        ("1 000", "not uid or uid:gid"),
        ("١٢٣", "not uid or uid:gid"),  # Arabic-Indic digits: str.isdigit() says yes, int() too
        ("1:2:3", "not uid or uid:gid"),
        (f"{MAX_ID + 1}", f"at most {MAX_ID}"),
        (f"1:{2**32}", f"at most {MAX_ID}"),
    ],
)
def test_root_names_and_nonsense_are_refused(text: str, why: str) -> None:
    with pytest.raises(UserRefused, match=why.replace("(", r"\(").replace(")", r"\)")):
        parse_user(text)


@pytest.mark.parametrize("user", ["00", "0000:0000", "65534:0", "root", "nobody"])
def test_validate_refuses_at_save_naming_the_field(user: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate({"image": "x", "user": user})
    assert err.value.violations[0].field == "user"


def test_spec_carries_the_numbers_docker_gets() -> None:
    assert ContainerSpec.from_config({"image": "x"}).user == "65534:65534"
    spec = ContainerSpec.from_config({"image": "x", "user": "0001234"})
    assert spec.user == "1234:1234" and spec.numeric_user() == (1234, 1234)
    with pytest.raises(InvalidArgument):
        ContainerSpec.from_config({"image": "x", "user": "65534:0"})
