"""The dashboard's live stream at the protocol level: Server-Sent Events of a tenant's updates
as they happen, nothing for a visitor not signed in, and an open stream ends cleanly when the
server stops (the server does not wait on it, nor is it killed)."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from pathlib import Path

import httpx

from tests.conftest import eventually_sync
from tests.web.conftest import WebServerProcess, webhook_env

ACTION = """actions:
  - name: stream-probe
    trigger: {event_types: [probes.sent]}
    handler: {type: python, config: {function: order-alert}}
"""


def test_the_stream_carries_updates_and_ends_with_the_server(tmp_path: Path) -> None:
    server = WebServerProcess(str(tmp_path / "data"), tmp_path / "server.log", webhook_env(tmp_path))
    server.start()
    events: list[dict[str, object]] = []
    opened, ended = threading.Event(), threading.Event()
    try:
        key = os.environ["NEOACTIONS_API_KEY"]
        client = httpx.Client(base_url=server.http, timeout=60)
        assert httpx.get(f"{server.http}/executions/stream").status_code == 303  # to sign in; no stream
        client.post("/login", data={"api_key": key, "tenant": "admin"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/actions").text)
        assert csrf is not None
        assert client.post("/actions", data={"csrf": csrf.group(1), "yaml": ACTION}).status_code == 303

        def read() -> None:
            with client.stream("GET", "/executions/stream?action=stream-probe") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    opened.set()
                    if line.startswith("data: "):
                        events.append(json.loads(line.removeprefix("data: ")))
            ended.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert opened.wait(30), "the stream did not open"
        body = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/t", "type": "probes.sent", "data": {}}
        published = client.post(
            "/v1/tenants/admin/events",
            content=json.dumps(body),
            headers={"content-type": "application/cloudevents+json", "authorization": f"Bearer {key}"},
        )
        [execution] = published.json()["results"][0]["executions"]
        eventually_sync(
            lambda: [e["kind"] for e in events if e["id"] == execution["id"]],
            until=lambda kinds: "succeeded" in kinds,
            within=20,
            what="the execution's updates on the stream",
        )
        assert {e["action"] for e in events} == {"stream-probe"}
    finally:
        proc = server.proc
        server.stop()
    assert ended.wait(30), "the stream did not end when the server stopped"
    assert proc is not None and proc.returncode == 0, "the server had to be killed"
