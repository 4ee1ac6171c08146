"""Standard Webhooks signatures, made with the maintained ``standardwebhooks`` library.

``webhook-id`` is the execution's idempotency key (stable across retries, so a
receiver can drop duplicates), ``webhook-timestamp`` the signing time in Unix
seconds, ``webhook-signature`` one ``v1,<base64 HMAC-SHA256>`` per configured
secret, space separated. Several secrets are how a secret is rotated: the
sender signs with the old and the new one until every receiver has the new one.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
_CACHE_SIZE = 256


class InvalidSecret(ValueError):
    """A configured signing secret is not a ``whsec_``-prefixed base64 key."""


def check_secret(secret: str) -> None:
    """Raise :class:`InvalidSecret` unless ``secret`` is ``whsec_`` + non-empty base64 (padded or not)."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a webhook secret must start with 'whsec_'")
    encoded = secret[len(SECRET_PREFIX) :]
    digits = encoded.rstrip("=")
    # Padding is optional (the reference library accepts both), but when given it must be
    # complete; only what is missing is added (a fixed "==" broke padded 32-byte keys).
    try:
        if digits != encoded and len(encoded) % 4:
            raise binascii.Error("incomplete padding")
        key = base64.b64decode(digits + "=" * (-len(digits) % 4), validate=True)
    except binascii.Error:
        raise InvalidSecret("a webhook secret must be base64 after 'whsec_'") from None
    if not key:
        raise InvalidSecret("a webhook secret may not be empty")


class WebhookSigner:
    """Signs webhook bodies; keeps the parsed keys of recently used secrets.

    Secrets arrive rendered in every execution's config, so the (cheap but not
    free) key parsing is cached by secret value.
    """

    def __init__(self) -> None:
        self._keys: OrderedDict[str, Webhook] = OrderedDict()

    def _webhook(self, secret: str) -> Webhook:
        hook = self._keys.get(secret)
        if hook is None:
            check_secret(secret)
            hook = Webhook(secret)
            self._keys[secret] = hook
            if len(self._keys) > _CACHE_SIZE:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(secret)
        return hook

    def headers(
        self,
        msg_id: str,
        body: str,
        secrets: Sequence[str],
        now: datetime | None = None,
    ) -> dict[str, str]:
        """The three ``webhook-*`` headers for ``body`` signed with every secret."""
        if not secrets:
            raise InvalidSecret("no webhook secret configured")
        timestamp = (now or datetime.now(UTC)).replace(microsecond=0)
        signatures = [self._webhook(s).sign(msg_id, timestamp, body) for s in secrets]
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(signatures),
        }


__all__ = ["SECRET_PREFIX", "InvalidSecret", "WebhookSigner", "check_secret"]
