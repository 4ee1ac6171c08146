"""Example ``python`` handlers, installed with neoactions so the README's "Try it" runs as
pasted: each is registered as a ``neoactions.handlers`` entry point (see pyproject.toml),
which is what lets the server run it without any setting.

Copy one as the start of your own handler; register yours the same way, or list its
module in ``NEOACTIONS_PYTHON_HANDLER_MODULES``.
"""

from __future__ import annotations

from typing import Any


def order_alert(config: dict[str, Any], data: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Tells the sales channel (``config["channel"]``, rendered from the event) about a big order.

    A real handler would post to a chat; this one logs the alert and returns what it would send.
    """
    channel = str(config.get("channel") or "#sales")
    text = f"order {data.get('order_id', '?')}: {data.get('amount')} in {data.get('region', 'an unknown region')}"
    ctx.log(f"alerting {channel}: {text}")
    return {"alerted": True, "channel": channel, "text": text, "attempt": ctx.attempt}


__all__ = ["order_alert"]
