"""Building the message and its envelope from a rendered ``email`` config.

Bcc recipients go into the SMTP envelope only: a ``Bcc`` header would show
every recipient who they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from neoactions.domain.model import JSON, JSONObject, utcnow
from neoactions.sandboxes.email.schema import RESERVED_HEADERS


class MessageConfigError(ValueError):
    """The rendered config cannot make a valid message (a retry would not help)."""


@dataclass(slots=True)
class Envelope:
    sender: str
    recipients: list[str]
    message: EmailMessage
    message_id: str


def _as_list(value: JSON) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _addresses(key: str, values: list[str]) -> list[str]:
    """The bare addresses (``a@b``) of header-style entries (``Name <a@b>``)."""
    out = []
    for name, address in getaddresses(values):
        if "@" not in address:
            raise MessageConfigError(f"{key}: {name or address!r} is not an email address")
        out.append(address)
    return out


def _message_id(idempotency_key: str, sender: str) -> str:
    """Derived from the idempotency key, so a retried send has the same Message-ID
    and receivers (and the relay) can recognise the duplicate."""
    domain = sender.rsplit("@", 1)[-1] or "neoactions.invalid"
    local = re.sub(r"[^A-Za-z0-9.\-_]", "-", idempotency_key)[:200] or "message"
    return f"<{local}@{domain}>"


def build_message(config: JSONObject, idempotency_key: str) -> Envelope:
    """The message (headers and bodies) and the envelope (sender, every recipient)."""
    sender_header = str(config["from"])
    senders = _addresses("from", [sender_header])
    if len(senders) != 1:
        raise MessageConfigError("from: exactly one sender address is needed")
    to, cc, bcc = (_as_list(config.get(k)) for k in ("to", "cc", "bcc"))
    reply_to = _as_list(config.get("reply_to"))
    # one RCPT TO per address, even if it is listed twice (say in to and bcc)
    recipients = list(dict.fromkeys(_addresses("to", to) + _addresses("cc", cc) + _addresses("bcc", bcc)))
    _addresses("reply_to", reply_to)
    if not recipients:
        raise MessageConfigError("to: no recipient")

    message = EmailMessage()
    message_id = _message_id(idempotency_key, senders[0])
    try:
        message["From"] = sender_header
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        if reply_to:
            message["Reply-To"] = ", ".join(reply_to)
        message["Subject"] = str(config.get("subject", ""))
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = message_id
        for name, value in config.get("headers", {}).items():
            if name.lower() in RESERVED_HEADERS:
                raise MessageConfigError(f"headers.{name}: set from its own config key")
            message[name] = value
    except ValueError as exc:  # e.g. a line break in a header value: header injection
        if isinstance(exc, MessageConfigError):
            raise
        raise MessageConfigError(f"invalid header: {exc}") from None

    text, html = config.get("text"), config.get("html")
    if text is not None:
        message.set_content(str(text))
        if html is not None:
            message.add_alternative(str(html), subtype="html")
    elif html is not None:
        message.set_content(str(html), subtype="html")
    else:
        raise MessageConfigError("text or html: the message has no body")
    return Envelope(senders[0], recipients, message, message_id)


__all__ = ["Envelope", "MessageConfigError", "build_message"]
