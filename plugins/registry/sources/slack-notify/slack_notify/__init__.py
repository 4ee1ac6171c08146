"""slack.post_message: chat.postMessage over HTTPS with the bot token, served by the neoactions SDK.

Only the standard library, so the wheel installs anywhere; Slack's answer decides the
outcome: ``ok: false`` with a rate limit or a server error is retried, other errors are not.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from neoactions.plugins.sdk import HandlerError, NonRetryableError, handler

RETRYABLE = {"ratelimited", "service_unavailable", "internal_error", "request_timeout", "fatal_error"}


@handler(name="slack.post_message", version="1.0.0")
def post_message(config: dict[str, Any], data: Any, ctx: Any) -> dict[str, Any]:
    base = str(config.get("base_url") or "https://slack.com/api").rstrip("/")
    body = json.dumps({"channel": config["channel"], "text": config["text"]}).encode()
    request = urllib.request.Request(
        f"{base}/chat.postMessage",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {config['token']}",
            "Idempotency-Key": ctx.idempotency_key,
        },
    )
    timeout = max(1.0, min(10.0, ctx.remaining_seconds()))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise HandlerError(
            f"Slack answered HTTP {exc.code}", type="http_error", retryable=exc.code >= 500 or exc.code == 429
        ) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise HandlerError(f"Slack is unreachable: {exc}", type="unreachable") from None
    if not answer.get("ok"):
        error = str(answer.get("error", "unknown_error"))
        if error in RETRYABLE:
            raise HandlerError(f"Slack refused the message: {error}", type=error)
        raise NonRetryableError(f"Slack refused the message: {error}", type=error)
    ctx.log(f"posted to {config['channel']} at {answer.get('ts', '?')}")
    return {"ok": True, "channel": answer.get("channel", config["channel"]), "ts": answer.get("ts", "")}
