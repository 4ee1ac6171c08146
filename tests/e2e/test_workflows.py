"""Durable workflows through a real server, on the embedded store and on PostgreSQL: the
issue's onboarding example end to end (a loopback SMTP server, a loopback HTTP target, a
python scorer), its event wait woken by the matching event or timing out, invalid
workflows refused naming the step, pause/resume with the CLI's step tree, and ``kill -9``
in the middle of 20-step runs, over and over, never re-running a completed step."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from neoactions.client import AsyncClient
from neoactions.client.cli._app import app as cli_app
from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.domain.model import ExecutionStatus
from tests.e2e.conftest import ServerProcess, module_server, tenant_client
from tests.e2e.test_webhook_delivery import LoopbackAllowedServer
from tests.fixtures.loopback_http import serve_http
from tests.integration.test_email_runner import Inbox, free_port

EXAMPLE = """
actions:
  - name: score-lead
    trigger: {event_types: ["leads.scored"]}
    handler: {type: python, config: {function: "shop.workflow_steps:score"}}
  - name: onboard-customer
    trigger: {event_types: ["customers.created"]}
    handler:
      type: workflow
      config:
        variables: {tier: {type: string, default: "free"}}
        steps:
          - name: welcome
            handler:
              type: email
              config: {host: 127.0.0.1, port: SMTP_PORT, security: none, from: "shop@example.com",
                       to: "{{ data.email }}", subject: "Welcome", text: "Hello {{ data.name }}"}
          - name: score
            action: score-lead
            input_mapping: {email: "{{ data.email }}"}
          - name: set-tier
            set_variable: {tier: "{{ 'gold' if steps.score.output.score > 80 else 'free' }}"}
            depends_on: [score]
          - name: wait-for-payment
            wait_for_event:
              event_types: ["payments.succeeded"]
              conditions: [{field: data.customer_id, operator: equals, value: "{{ data.id }}"}]
              timeout: WAIT_TIMEOUT
            depends_on: [welcome]
          - name: nudge
            condition: "steps['wait-for-payment'].timed_out"
            handler: {type: http, config: {url: "HTTP_URL/nudge/{{ data.id }}", method: POST}}
            depends_on: [wait-for-payment]
          - name: per-seat
            for_each: "{{ data.seats }}"
            max_parallel: 10
            handler: {type: python, config: {function: "shop.workflow_steps:mark", sink: "SINK"}}
          - name: cool-down
            wait: 1s
            depends_on: [per-seat, set-tier]
"""


@pytest.fixture
def loopback_server(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackAllowedServer]:
    monkeypatch.setenv("NEOACTIONS_LEASE_SECONDS", "2")
    proc = LoopbackAllowedServer(store_url, tmp_path / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def _until(check: Any, within: float = 60.0, what: str = "") -> Any:
    async with asyncio.timeout(within):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.05)


async def _run_of(client: AsyncClient, event_id: str) -> str:
    async def found() -> str:
        page = await client.list_executions(event_id=event_id)
        runs = [x for x in page.items if x.handler_type == "workflow"]
        return runs[0].id if runs else ""

    return str(await _until(found, what="the workflow run"))


async def _final(client: AsyncClient, execution_id: str, within: float = 90.0) -> Any:
    async def done() -> Any:
        ex = await client.get_execution(execution_id)
        return ex if ex.status.is_final else None

    return await _until(done, within)


async def _step_status(client: AsyncClient, run_id: str) -> dict[str, str]:
    return {
        s["step"] if s["index"] < 0 else f"{s['step']}[{s['index']}]": s["status"]
        for s in await client.workflow_steps(run_id)
    }


async def test_the_onboarding_example_runs_end_to_end(
    loopback_server: LoopbackAllowedServer, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    sink = tmp_path / "seats.log"
    with serve_http() as target:
        text = EXAMPLE.replace("SMTP_PORT", str(port)).replace("HTTP_URL", target.url).replace("SINK", str(sink))
        paid_doc = yaml.safe_load(text.replace("WAIT_TIMEOUT", "120s"))
        lapsed_doc = yaml.safe_load(text.replace("WAIT_TIMEOUT", "2s"))
        lapsed = lapsed_doc["actions"][1]
        lapsed["name"], lapsed["trigger"] = "onboard-trial", {"event_types": ["customers.trial_started"]}
        async with tenant_client(loopback_server.target) as client:
            await client.apply({"actions": [*paid_doc["actions"], lapsed]})

            # the wait woken by its payment: the nudge is skipped
            created = await client.publish(
                "customers.created",
                {"id": "c1", "name": "Ada", "email": "ada@bigcorp.example", "seats": ["s1", "s2", "s3"]},
            )
            run = await _run_of(client, created.event.id)
            await _until(lambda: _is(client, run, "wait-for-payment", "waiting"), what="the run waits for the payment")

            async def run_waiting() -> bool:
                return (await client.get_execution(run)).status is ExecutionStatus.WAITING

            await _until(run_waiting, what="the run waiting, holding nothing")
            await client.publish("payments.succeeded", {"customer_id": "someone-else", "amount": 1})
            await client.publish("payments.succeeded", {"customer_id": "c1", "amount": 42})
            done = await _final(client, run)
            assert done.status is ExecutionStatus.SUCCEEDED, done.error
            assert done.output["vars"] == {"tier": "gold"}
            assert done.output["steps"]["score"]["score"] == 90
            assert done.output["steps"]["wait-for-payment"]["data"] == {"customer_id": "c1", "amount": 42}
            statuses = await _step_status(client, run)
            assert statuses["nudge"] == "skipped" and statuses["cool-down"] == "succeeded"
            assert [statuses[f"per-seat[{i}]"] for i in range(3)] == ["succeeded"] * 3
            assert [m.recipients for m in inbox.delivered] == [["ada@bigcorp.example"]]
            assert inbox.delivered[0].message["subject"] == "Welcome"
            assert target.requests == []
            # the score step ran the action score-lead as a child linked to the run
            children = (await client.list_executions(action="score-lead")).items
            assert [c.parent_execution_id for c in children] == [run]

            # the wait timing out without a payment: the nudge calls the HTTP target
            trial = await client.publish(
                "customers.trial_started", {"id": "c2", "name": "Bo", "email": "bo@small.example", "seats": []}
            )
            lapsed_run = await _run_of(client, trial.event.id)
            done = await _final(client, lapsed_run)
            assert done.status is ExecutionStatus.SUCCEEDED, done.error
            assert done.output["vars"] == {"tier": "free"}
            statuses = await _step_status(client, lapsed_run)
            assert statuses["wait-for-payment"] == "timed_out" and statuses["nudge"] == "succeeded"
            assert [(r.method, r.path) for r in target.requests] == [("POST", "/nudge/c2")]


async def _is(client: AsyncClient, run: str, step: str, status: str) -> bool:
    return (await _step_status(client, run)).get(step) == status


async def test_invalid_workflows_are_refused_naming_the_step(loopback_server: LoopbackAllowedServer) -> None:
    cases: dict[str, tuple[list[dict[str, Any]], str, str]] = {
        "cycle": (
            [{"name": "a", "wait": "1s", "depends_on": ["b"]}, {"name": "b", "wait": "1s", "depends_on": ["a"]}],
            "step 'b'",
            "steps[1].depends_on[0]",
        ),
        "unknown depends_on": (
            [{"name": "a", "wait": "1s", "depends_on": ["nope"]}],
            "step 'a'",
            "steps[0].depends_on[0]",
        ),
        "bad template": (
            [{"name": "tpl", "set_variable": {"x": "{{ data. }}"}}],
            "step 'tpl'",
            "steps[0].set_variable",
        ),
        "bad CEL": ([{"name": "c", "wait": "1s", "condition": "vars.x =="}], "step 'c'", "steps[0].condition"),
        "unknown handler type": ([{"name": "h", "handler": {"type": "nope"}}], "step 'h'", "steps[0].handler.type"),
    }
    async with tenant_client(loopback_server.target) as client:
        for what, (steps, named, field) in cases.items():
            doc = {
                "name": "bad",
                "trigger": {"event_types": ["x.y"]},
                "handler": {"type": "workflow", "config": {"steps": steps}},
            }
            with pytest.raises(InvalidArgument) as refused:
                await client.apply({"actions": [doc]})
            assert named in refused.value.message, (what, refused.value.message)
            fields = [v.field for v in refused.value.violations]
            assert any(f.endswith(field) or field in f for f in fields), (what, fields)
        assert (await client.list_actions()).items == []


async def test_pause_and_resume_with_the_cli_showing_the_step_tree(
    loopback_server: LoopbackAllowedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = tmp_path / "steps.log"
    mark = {"type": "python", "config": {"function": "shop.workflow_steps:mark", "sink": str(sink)}}
    async with tenant_client(loopback_server.target) as client:
        steps = [
            {"name": "first", "handler": mark},
            {"name": "hold", "wait": "2s", "depends_on": ["first"]},
            {"name": "after", "handler": mark, "depends_on": ["hold"]},
        ]
        await client.apply(
            {"actions": [{"name": "flow", "trigger": {"event_types": ["go.now"]},
                          "handler": {"type": "workflow", "config": {"steps": steps}}}]}
        )  # fmt: skip
        published = await client.publish("go.now", {})
        run = await _run_of(client, published.event.id)
        await _until(lambda: _is(client, run, "hold", "waiting"))
        await client.pause_execution(run)
        await asyncio.sleep(3.0)  # the timer fires meanwhile: paused, the run starts nothing
        statuses = await _step_status(client, run)
        assert "after" not in statuses and statuses["hold"] == "succeeded"
        assert (await client.get_execution(run)).status is ExecutionStatus.WAITING

        waiting = await client.list_executions(status=ExecutionStatus.WAITING)
        assert run in [x.id for x in waiting.items]
        tenant = client.tenant
        cli = CliRunner()
        base = ["--server", loopback_server.target, "--tenant", tenant]
        shown = cli.invoke(cli_app, [*base, "executions", "get", run])
        assert shown.exit_code == 0, shown.output
        assert "first" in shown.output and "hold" in shown.output and "succeeded" in shown.output
        resumed = cli.invoke(cli_app, [*base, "executions", "resume", run, "--json"])
        assert resumed.exit_code == 0, resumed.output
        done = await _final(client, run)
        assert done.status is ExecutionStatus.SUCCEEDED
        as_json = cli.invoke(cli_app, [*base, "executions", "get", run, "--json"])
        doc = json.loads(as_json.output)
        assert [s["step"] for s in doc["steps"]] == ["after", "first", "hold"]
        assert {s["status"] for s in doc["steps"]} == {"succeeded"}
        with pytest.raises(FailedPrecondition):
            await client.pause_execution(run)
        assert len(sink.read_text().splitlines()) == 2


@pytest.mark.slow
async def test_kill_9_mid_workflow_never_reruns_a_completed_step(
    loopback_server: LoopbackAllowedServer, tmp_path: Path
) -> None:
    """50 runs of a 20-step workflow (25 on PostgreSQL); the server is killed (``kill -9``) once per run, at a
    different step each time, and restarted. Every run completes; every step ran in one
    child execution, and no attempt of it ran again once it had completed."""
    # 50 kills on the embedded store (about 5 minutes); 25 on PostgreSQL keep CI lean
    runs_wanted = 50 if not loopback_server.store_url.startswith("postgresql://") else 25
    length = 20
    sink = tmp_path / "steps.log"
    steps = [
        {
            "name": f"s{i:02d}",
            "handler": {"type": "python", "config": {"function": "shop.workflow_steps:mark", "sink": str(sink)}},
        }
        | ({"depends_on": [f"s{i - 1:02d}"]} if i else {})
        for i in range(length)
    ]
    tenant = f"t_{uuid.uuid4().hex[:12]}"
    async with AsyncClient(loopback_server.target, timeout=30) as admin:
        await admin.create_tenant(tenant)

    def lines() -> list[list[str]]:
        return [line.split(",") for line in sink.read_text().splitlines()] if sink.exists() else []

    runs: list[str] = []
    for n in range(runs_wanted):
        async with AsyncClient(loopback_server.target, tenant=tenant, timeout=30) as client:
            if n == 0:
                await client.apply(
                    {"actions": [{"name": "long", "trigger": {"event_types": ["work.go"]},
                                  "handler": {"type": "workflow", "config": {"steps": steps}}}]}
                )  # fmt: skip
            published = await client.publish("work.go", {"n": n})
            run = await _run_of(client, published.event.id)
            runs.append(run)
            cut_at = 1 + (n * 7) % (length - 2)

            async def reached(run: str = run, cut_at: int = cut_at) -> bool:
                return sum(1 for key, *_ in lines() if key.startswith(run + "/")) >= cut_at

            await _until(reached, within=120)
        loopback_server.kill()
        loopback_server.start()

    async with AsyncClient(loopback_server.target, tenant=tenant, timeout=30) as client:
        for run in runs:
            done = await _final(client, run, within=300)
            assert done.status is ExecutionStatus.SUCCEEDED, (run, done.error)

    per_step: dict[str, set[str]] = defaultdict(set)
    attempts: dict[str, list[int]] = defaultdict(list)
    for key, execution_id, attempt in lines():
        per_step[key].add(execution_id)
        attempts[key].append(int(attempt))
    for run in runs:
        keys = [f"{run}/s{i:02d}" for i in range(length)]
        assert all(key in per_step for key in keys), f"run {run} has steps that never ran"
        for key in keys:
            assert len(per_step[key]) == 1, f"step {key} ran in {len(per_step[key])} child executions"
            # an attempt cut by the kill runs again as the next attempt; a completed one never
            assert len(attempts[key]) == len(set(attempts[key])), f"step {key} ran an attempt twice"
    assert len(per_step) == runs_wanted * length


@pytest.fixture
def api_and_worker(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """An ``api`` process and a ``worker`` process on one fresh PostgreSQL database."""
    (tmp_path / "api").mkdir()
    with module_server("postgres", tmp_path / "api", {"NEOACTIONS_ROLE": "api"}) as api:
        worker = ServerProcess(api.store_url, tmp_path / "worker.log")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("NEOACTIONS_ROLE", "worker")
            worker.start()
        try:
            yield api, worker
        finally:
            worker.stop()


async def test_an_event_published_through_another_process_wakes_the_waiting_run(
    api_and_worker: tuple[ServerProcess, ServerProcess],
) -> None:
    """The worker drives the run and stores its event wait; the payment is published through
    the api process, whose wait index learnt of the wait through the change feed."""
    api, _worker = api_and_worker
    steps = [
        {
            "name": "pay",
            "wait_for_event": {
                "event_types": ["payments.succeeded"],
                "conditions": [{"field": "data.customer_id", "operator": "equals", "value": "{{ data.id }}"}],
                "timeout": "10m",
            },
        }
    ]
    async with tenant_client(api.target) as client:
        await client.apply(
            {"actions": [{"name": "flow", "trigger": {"event_types": ["customers.created"]},
                          "handler": {"type": "workflow", "config": {"steps": steps}}}]}
        )  # fmt: skip
        created = await client.publish("customers.created", {"id": "c9"})
        run = await _run_of(client, created.event.id)
        await _until(lambda: _is(client, run, "pay", "waiting"))
        await asyncio.sleep(0.5)  # the notification travels (it is asynchronous)
        await client.publish("payments.succeeded", {"customer_id": "c9"})
        done = await _final(client, run, within=30)
        assert done.status is ExecutionStatus.SUCCEEDED, done.error
        assert done.output["steps"]["pay"]["data"] == {"customer_id": "c9"}
