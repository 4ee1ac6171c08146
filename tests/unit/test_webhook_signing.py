"""Standard Webhooks secrets: padded and unpadded base64 keys sign what the reference library verifies."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from neoactions.sandboxes.http.signing import InvalidSecret, WebhookSigner, check_secret


def secret_of(key: bytes, *, padded: bool = True) -> str:
    encoded = base64.b64encode(key).decode()
    return "whsec_" + (encoded if padded else encoded.rstrip("="))


def verify(secret: str, headers: dict[str, str], body: str) -> None:
    """Raises unless the reference library accepts the signature (timestamp checked against now)."""
    Webhook(secret).verify(body, headers)


@pytest.mark.parametrize("size", [24, 32])
def test_keys_of_24_and_32_bytes_sign_and_verify(size: int) -> None:
    key = bytes(range(1, size + 1))
    secret = secret_of(key)
    assert secret.endswith("=") == (size % 3 != 0)  # the 32-byte key is the padded case
    check_secret(secret)
    headers = WebhookSigner().headers("msg_1", '{"a":1}', [secret])
    verify(secret, headers, '{"a":1}')


@given(key=st.binary(min_size=1, max_size=64), padded=st.booleans())
def test_any_key_padded_or_not_is_accepted_and_verifies(key: bytes, padded: bool) -> None:
    secret = secret_of(key, padded=padded)
    check_secret(secret)
    body = '{"n":1}'
    headers = WebhookSigner().headers("msg_x", body, [secret], now=datetime.now(UTC))
    # The reference library reads the padded form of the same key.
    verify(secret_of(key), headers, body)


def test_rotation_signs_with_every_secret() -> None:
    old, new = secret_of(b"o" * 24), secret_of(b"n" * 32)
    headers = WebhookSigner().headers("msg_2", "{}", [old, new])
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(old, headers, "{}")
    verify(new, headers, "{}")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("abc", "must start with 'whsec_'"),
        ("whsec_", "may not be empty"),
        ("whsec_!!!!", "must be base64"),
        ("whsec_YWJj=", "must be base64"),  # padding where none belongs
        ("whsec_YQ===", "must be base64"),  # too much padding
        ("whsec_Y", "must be base64"),  # a length no base64 has
    ],
)
def test_malformed_secrets_are_refused(secret: str, message: str) -> None:
    with pytest.raises(InvalidSecret, match=message):
        check_secret(secret)
