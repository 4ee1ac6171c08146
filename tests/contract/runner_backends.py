"""Every runner under contract test, set up with real components, behind one small adapter.

A :class:`RunnerKind` knows how to make its runner do each behaviour of the contract
suite (``test_runner_contract.py``): succeed with a given value, fail with a classified
error (retryable and not), run until stopped (past the deadline, or until cancelled),
stream logs and progress, return a large output. Each kind's ``open_*`` function starts
what its runner talks to — loopback HTTP servers (http, a Lambda Invoke endpoint), an
aiosmtpd server (email), a Handler gRPC server of the Python SDK (sidecar), Docker
(container, one-shot and warm sidecars), wasmtime with QuickJS (wasm) — and stops it
after the module.

What a kind cannot express at all is in :data:`NOT_APPLICABLE`, with the reason. A new
runner joins the suite with a kind here and its opener in the test module's ``kind`` fixture.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from loopback_http import LoopbackServer, Received, Reply, serve_http  # type: ignore[import-not-found]

from neoactions.domain.model import JSON, JSONObject, utcnow
from neoactions.plugins.sdk import HandlerContext as SdkContext
from neoactions.plugins.sdk import HandlerError, handler, start_server
from neoactions.sandboxes.aws_lambda import LambdaRunner
from neoactions.sandboxes.container import INSTANCE_LABEL, ContainerRunner
from neoactions.sandboxes.email import EmailRunner
from neoactions.sandboxes.http import AddressPolicy, HttpRunner
from neoactions.sandboxes.python import NonRetryableError, PythonRunner
from neoactions.sandboxes.python.runner import HandlerContext, TrustedHandlers
from neoactions.sandboxes.sidecar import SidecarRunner
from neoactions.sandboxes.sidecar.address import SidecarPolicy
from neoactions.sandboxes.wasm import WasmRunner
from neoactions.server.runners import ExecutionContext, Runner, RunnerUpdate

LOOPBACK = ["127.0.0.0/8", "::1/128"]
MIB = 1 << 20

#: the behaviours of the contract suite
BEHAVIOURS = (
    "result",
    "concurrent_results",
    "retryable_failure",
    "final_failure",
    "unusable_config",
    "timeout",
    "expired_deadline",
    "cancellation",
    "logs",
    "progress",
    "large_output",
)

#: every runner kind under test, in the order the suite runs them
KINDS = ("python", "wasm", "http", "lambda", "email", "sidecar", "container", "container_sidecar")

#: (kind, behaviour) pairs a kind cannot express, and why
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("wasm", "retryable_failure"): "a guest's own error is final by design (docs/runners/wasm.md: the same code "
    "on the same input fails the same way); wasm has no way to ask for a retry",
    ("wasm", "progress"): "guests report logs, a result or an error (frames L, R, E): there is no progress channel",
    ("http", "progress"): "one request per attempt: an HTTP answer has no progress to stream",
    ("lambda", "progress"): "Lambda Invoke answers once: no progress to stream",
    ("email", "progress"): "one SMTP exchange per attempt: no progress to stream",
    ("email", "large_output"): "the output is the SMTP exchange's summary (message id, recipients, the server's "
    "reply line): it cannot carry a large value",
    ("container", "progress"): "a one-shot container has stdout (the output) and stderr (log lines) only",
    ("container_sidecar", "retryable_failure"): "the python-sidecar test image's handler fails only with "
    "NonRetryableError; the sidecar kind covers retryable handler errors over the same protocol",
}


def ctx(seconds: float, tenant: str = "") -> ExecutionContext:
    """A fresh attempt's context ending in ``seconds``; its own tenant unless given."""
    ident = uuid.uuid4().hex[:12]
    return ExecutionContext(
        tenant=tenant or f"t-{ident}",
        execution_id=f"ex-{ident}",
        action_name="contract",
        action_version=1,
        attempt=1,
        idempotency_key=f"idem-{ident}",
        deadline=utcnow() + timedelta(seconds=seconds),
    )


def token() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Case:
    """What to run, and what the contract expects of it."""

    config: JSONObject
    data: JSON = None
    #: checks a Result's output (raises AssertionError)
    expect: Callable[[JSON], None] = lambda _output: None
    #: the classified failure's type
    error_type: str = ""
    #: each must be part of some Log message, in this order
    logs: Sequence[str] = ()
    #: the progress fractions, in order
    progress: Sequence[float] = ()
    #: ties a running case to what the kind observes of it (started, stopped)
    token: str = field(default_factory=token)


class RunnerKind:
    """One runner and how to make it do each behaviour; subclasses fill in the cases."""

    name = ""
    #: how long past its deadline an attempt may take to report the timeout
    margin = 1.0
    #: how long a run-until-stopped case needs to get going before the timeout test's deadline
    timeout_seconds = 1.0

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def succeed(self, value: JSONObject) -> Case:
        raise NotImplementedError

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        """Whether the handler got ``case`` (a :meth:`succeed` case) at all."""
        raise NotImplementedError

    def fail(self, retryable: bool) -> Case:
        raise NotImplementedError

    def unusable(self) -> Case:
        """A config that passed the save-time checks (or was rendered since) but that the runner
        cannot run: a final, classified failure, never an exception."""
        raise NotImplementedError

    def hang(self) -> Case:
        """Runs until stopped: past any deadline, or until cancelled."""
        raise NotImplementedError

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        """Whether the hanging ``case`` is running (its handler got the work)."""
        raise NotImplementedError

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        """Nothing of the stopped ``case`` runs any more (no process, container, thread, call)."""
        raise NotImplementedError

    def chatty(self) -> Case:
        """Logs (and, where the kind can, progress) before its result."""
        raise NotImplementedError

    def large(self, size: int) -> Case:
        """Returns a value of about ``size`` bytes."""
        raise NotImplementedError


def _equals(expected: JSON, pick: Callable[[Any], JSON] = lambda o: o) -> Callable[[JSON], None]:
    def expect(output: JSON) -> None:
        got = pick(output)
        assert got == expected, f"output {str(got)[:300]} != {str(expected)[:300]}"

    return expect


def _blob_of(size: int, pick: Callable[[Any], JSON] = lambda o: o) -> Callable[[JSON], None]:
    def expect(output: JSON) -> None:
        got = pick(output)
        assert isinstance(got, dict) and got.get("blob") == "x" * size, f"not the {size}-byte blob: {str(got)[:200]}"

    return expect


# --- python -------------------------------------------------------------------------------

#: tokens of python/sidecar handlers that started hanging, and of those that were stopped
STARTED: set[str] = set()
STOPPED: set[str] = set()
#: tokens of the cases python/sidecar handlers were called with
CALLED: set[str] = set()


async def _hang_until_cancelled(case_token: str) -> None:
    STARTED.add(case_token)
    try:
        await asyncio.Event().wait()
    finally:
        STOPPED.add(case_token)


async def contract_handler(config: JSONObject, data: Any, ctx: HandlerContext) -> JSON:
    """The python kind's handler: does what ``config["behave"]`` says."""
    behave = config["behave"]
    CALLED.add(str(config.get("token", "")))
    if behave == "echo":
        return data
    if behave == "fail":
        if config["retryable"]:
            raise ConnectionError("the upstream hung up")
        raise NonRetryableError("the order is unknown")
    if behave == "hang":
        await _hang_until_cancelled(str(config["token"]))
    if behave == "chatty":
        ctx.log("line one")
        ctx.progress(0.5, "half way")
        ctx.log("line two", "warning")
        return {"done": True}
    if behave == "large":
        return {"blob": "x" * int(config["size"])}
    raise AssertionError(f"unknown behaviour {behave}")


class PythonKind(RunnerKind):
    name = "python"
    function = f"{__name__}:contract_handler"

    def _case(self, behave: str, **extra: Any) -> JSONObject:
        return {"function": self.function, "behave": behave, **extra}

    def succeed(self, value: JSONObject) -> Case:
        case = Case({}, value, expect=_equals(value))
        case.config = self._case("echo", token=case.token)
        return case

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in CALLED

    def fail(self, retryable: bool) -> Case:
        return Case(
            self._case("fail", retryable=retryable),
            error_type="ConnectionError" if retryable else "NonRetryableError",
        )

    def unusable(self) -> Case:
        # saved while its module was approved; the setting changed since
        return Case({"function": "tests.contract.elsewhere:handler"}, error_type="handler_not_found")

    def hang(self) -> Case:
        case = Case({})
        case.config = self._case("hang", token=case.token)
        return case

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in STARTED

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return case.token in STOPPED

    def chatty(self) -> Case:
        return Case(self._case("chatty"), logs=["line one", "line two"], progress=[0.5])

    def large(self, size: int) -> Case:
        return Case(self._case("large", size=size), expect=_blob_of(size))


@asynccontextmanager
async def open_python() -> AsyncIterator[RunnerKind]:
    runner = PythonRunner(max_threads=4, trusted=TrustedHandlers([__name__]))
    try:
        yield PythonKind(runner)
    finally:
        await runner.aclose()


# --- wasm (JavaScript on QuickJS) ---------------------------------------------------------


class WasmKind(RunnerKind):
    name = "wasm"
    runner: WasmRunner

    @staticmethod
    def _js(source: str, **limits: Any) -> JSONObject:
        config: JSONObject = {"language": "javascript", "source": source}
        if limits:
            config["limits"] = limits
        return config

    def succeed(self, value: JSONObject) -> Case:
        source = 'function main(input) { console.log("running"); return input.data; }'
        return Case(self._js(source), value, expect=_equals(value))

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return any(getattr(u, "message", "") == "running" for u in updates)

    def fail(self, retryable: bool) -> Case:
        assert not retryable
        return Case(
            self._js('function main() { throw new RangeError("the order is unknown"); }'), error_type="RangeError"
        )

    def unusable(self) -> Case:
        # saved under a higher operator maximum, lowered since
        source = "function main() { return 1; }"
        return Case(self._js(source, timeout_seconds=120), error_type="invalid_config")

    def hang(self) -> Case:
        # the guest's own limit is the largest allowed: the attempt's deadline is what stops it
        source = 'function main() { console.log("started"); for (;;) {} }'
        return Case(self._js(source, timeout_seconds=60))

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return any(getattr(u, "message", "") == "started" for u in updates)

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return self.runner.slots.held(context.tenant) == 0

    def chatty(self) -> Case:
        source = 'function main() { console.log("line one"); console.warn("line two"); return { done: true }; }'
        return Case(self._js(source), logs=["line one", "line two"])

    def large(self, size: int) -> Case:
        source = 'function main(input) { return { blob: "x".repeat(input.data.size) }; }'
        return Case(self._js(source, output_bytes=4 * MIB), {"size": size}, expect=_blob_of(size))


@asynccontextmanager
async def open_wasm(data_dir: Path) -> AsyncIterator[RunnerKind]:
    runner = WasmRunner(data_dir=data_dir, cache_dir=data_dir / "wasm-cache", workers=2, tenant_workers=2)
    try:
        # compiled before the first case: a compile is not part of any attempt's budget
        await asyncio.gather(*(asyncio.wrap_future(f) for f in runner.warm(("javascript",))))
        yield WasmKind(runner)
    finally:
        await runner.aclose()


# --- loopback servers that can hold a request -----------------------------------------------


class Holding:
    """Requests a loopback server holds (by token) until the server closes."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.closing = threading.Event()

    def hold(self, case_token: str) -> Reply:
        self.started.add(case_token)
        self.closing.wait(60)
        return Reply(503, b"closing")


# --- http ---------------------------------------------------------------------------------


class HttpKind(RunnerKind):
    name = "http"

    def __init__(self, runner: Runner, server: LoopbackServer, holding: Holding) -> None:
        super().__init__(runner)
        self.server = server
        self.url = server.url
        self.holding = holding

    def succeed(self, value: JSONObject) -> Case:
        case = Case({}, value, expect=_equals(value, lambda o: o["body"]))
        case.config = {"url": f"{self.url}/echo/{case.token}", "method": "POST"}
        return case

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return any(r.path == f"/echo/{case.token}" for r in self.server.requests)

    def fail(self, retryable: bool) -> Case:
        status = 503 if retryable else 404
        return Case({"url": f"{self.url}/status/{status}", "method": "GET"}, error_type=f"http_{status}")

    def unusable(self) -> Case:
        # a templated URL that rendered into something that is not one
        return Case({"url": "ftp://files.example.test/x", "method": "GET"}, error_type="invalid_config")

    def hang(self) -> Case:
        case = Case({})
        case.config = {"url": f"{self.url}/hold/{case.token}", "method": "GET"}
        return case

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in self.holding.started

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return True  # nothing runs outside the awaiting task: the pooled connection is httpx's

    def chatty(self) -> Case:
        return Case({"url": f"{self.url}/echo", "method": "POST"}, {"n": 1}, logs=["POST 127.0.0.1 -> 200 in"])

    def large(self, size: int) -> Case:
        config = {"url": f"{self.url}/blob/{size}", "method": "GET", "max_response_bytes": 4 * MIB}
        return Case(config, expect=_blob_of(size, lambda o: o["body"]))


def _http_responder(holding: Holding) -> Callable[[Received], Reply]:
    def respond(req: Received) -> Reply:
        json_type = {"content-type": "application/json"}
        if re.fullmatch(r"/echo(/\w+)?", req.path):
            return Reply(200, req.body, json_type)
        if m := re.fullmatch(r"/status/(\d+)", req.path):
            return Reply(int(m[1]), b"asked for it")
        if m := re.fullmatch(r"/hold/(\w+)", req.path):
            return holding.hold(m[1])
        if m := re.fullmatch(r"/blob/(\d+)", req.path):
            return Reply(200, json.dumps({"blob": "x" * int(m[1])}).encode(), json_type)
        return Reply(404, b"no such path")

    return respond


@asynccontextmanager
async def open_http() -> AsyncIterator[RunnerKind]:
    holding = Holding()
    runner = HttpRunner(AddressPolicy.from_networks(LOOPBACK))
    try:
        with serve_http(_http_responder(holding)) as server:
            try:
                yield HttpKind(runner, server, holding)
            finally:
                holding.closing.set()
    finally:
        await runner.aclose()


# --- lambda (a loopback endpoint speaking the Invoke API) -----------------------------------

REGION = "eu-west-3"
CREDENTIALS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
_INVOKE = re.compile(r"^/2015-03-31/functions/([^/?]+)/invocations$")


def _lambda_responder(holding: Holding) -> Callable[[Received], Reply]:
    def respond(req: Received) -> Reply:
        match = _INVOKE.match(req.path)
        if (
            req.method != "POST"
            or match is None
            or "aws4-hmac-sha256" not in req.headers.get("authorization", "").lower()
        ):
            return Reply(403, b'{"message": "not an Invoke"}', {"x-amzn-errortype": "UnknownOperationException"})
        name = match[1]
        headers = {"content-type": "application/json", "x-amz-executed-version": "$LATEST"}
        if name.startswith("echo"):
            if req.headers.get("x-amz-log-type") == "Tail":
                headers["x-amz-log-result"] = base64.b64encode(b"START RequestId: 1\nline one\nEND\n").decode()
            return Reply(200, req.body, headers)
        if name == "fails":
            error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ['  File "h.py", line 3']}
            return Reply(200, json.dumps(error).encode(), {**headers, "x-amz-function-error": "Unhandled"})
        if name.startswith("hold-"):
            return holding.hold(name.removeprefix("hold-"))
        if name == "blob":
            size = json.loads(req.body)["size"]
            return Reply(200, json.dumps({"blob": "x" * size}).encode(), headers)
        body = json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode()
        return Reply(404, body, {"x-amzn-errortype": "ResourceNotFoundException:http://internal.amazon.com/"})

    return respond


class LambdaKind(RunnerKind):
    name = "lambda"

    def __init__(self, runner: Runner, server: LoopbackServer, holding: Holding) -> None:
        super().__init__(runner)
        self.server = server
        self.url = server.url
        self.holding = holding

    def _config(self, function: str, **extra: Any) -> JSONObject:
        return {
            "function_name": function,
            "endpoint_url": self.url,
            "region": REGION,
            "credentials": CREDENTIALS,
            **extra,
        }

    def succeed(self, value: JSONObject) -> Case:
        case = Case({}, value, expect=_equals(value, lambda o: o["payload"]))
        case.config = self._config(f"echo-{case.token}")
        return case

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return any(f"/echo-{case.token}/" in r.path for r in self.server.requests)

    def fail(self, retryable: bool) -> Case:
        # the function raising is retryable (the action's policy decides); a missing function is not
        if retryable:
            return Case(self._config("fails"), {}, error_type="lambda_function_error")
        return Case(self._config("missing"), {}, error_type="lambda_service_error")

    def unusable(self) -> Case:
        # a templated endpoint that rendered into something that is not a URL
        return Case({**self._config("echo"), "endpoint_url": "lambda.local"}, {}, error_type="invalid_config")

    def hang(self) -> Case:
        case = Case({}, {})
        case.config = self._config(f"hold-{case.token}")
        return case

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in self.holding.started

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return True  # nothing runs outside the awaiting task: the pooled connection is httpx's

    def chatty(self) -> Case:
        return Case(self._config("echo", log_tail=True), {"n": 1}, logs=["START RequestId: 1", "line one"])

    def large(self, size: int) -> Case:
        return Case(self._config("blob"), {"size": size}, expect=_blob_of(size, lambda o: o["payload"]))


@asynccontextmanager
async def open_lambda() -> AsyncIterator[RunnerKind]:
    holding = Holding()
    runner = LambdaRunner(AddressPolicy.from_networks(LOOPBACK))
    try:
        with serve_http(_lambda_responder(holding)) as server:
            try:
                yield LambdaKind(runner, server, holding)
            finally:
                holding.closing.set()
    finally:
        await runner.aclose()


# --- email (aiosmtpd on loopback) -----------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler: refuses nobody@ (5xx) and busy@ (4xx), holds hold-<token>@ in DATA,
    and names the accepting recipient's token in its reply."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.stopped: set[str] = set()
        #: every recipient asked for, accepted or not
        self.asked: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        self.asked.add(address)
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        local = str(envelope.rcpt_tos[0]).split("@", 1)[0]
        if local.startswith("hold-"):
            held = local.removeprefix("hold-")
            self.started.add(held)
            try:
                await asyncio.Event().wait()  # until the client goes or the server stops
            finally:
                self.stopped.add(held)
        return f"250 2.0.0 queued as {local}"


class EmailKind(RunnerKind):
    name = "email"

    def __init__(self, runner: Runner, port: int, mailbox: Mailbox) -> None:
        super().__init__(runner)
        self.port = port
        self.mailbox = mailbox

    def _mail(self, *to: str) -> JSONObject:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "from": "robot@example.test",
            "to": list(to),
            "subject": "contract",
            "text": "hello",
        }

    def succeed(self, value: JSONObject) -> Case:
        # an email's output is the exchange's summary: the value is checked in the server's reply
        case = Case({}, value)
        rcpt = f"ok-{case.token}@example.test"
        case.config = self._mail(rcpt)

        def expect(output: Any) -> None:
            assert output["accepted"] == [rcpt] and output["refused"] == {}, output
            assert f"queued as ok-{case.token}" in output["response"], output

        case.expect = expect
        return case

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return f"ok-{case.token}@example.test" in self.mailbox.asked

    def fail(self, retryable: bool) -> Case:
        return Case(
            self._mail("busy@example.test" if retryable else "nobody@example.test"),
            error_type="smtp_recipients_refused",
        )

    def unusable(self) -> Case:
        # a templated recipient that rendered into something that is not an address
        return Case(self._mail("not an address"), error_type="invalid_config")

    def hang(self) -> Case:
        case = Case({})
        case.config = self._mail(f"hold-{case.token}@example.test")
        return case

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in self.mailbox.started

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return True  # nothing runs outside the awaiting task: the SMTP session is the task's own

    def chatty(self) -> Case:
        return Case(self._mail("ok-1@example.test", "nobody@example.test"), logs=["some recipients were refused"])

    def large(self, size: int) -> Case:
        raise NotImplementedError(NOT_APPLICABLE[("email", "large_output")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def open_email() -> AsyncIterator[RunnerKind]:
    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield EmailKind(EmailRunner(AddressPolicy.from_networks(LOOPBACK), local_hostname="runner.test"), port, mailbox)
    finally:
        await asyncio.to_thread(controller.stop)


# --- sidecar (the Python SDK's Handler server, in-process) ----------------------------------


@handler(
    name="contract",
    version="1.0.0",
    capabilities=["streaming-logs"],
    config_schema={"type": "object", "properties": {"mode": {"type": "string"}}},
)  # type: ignore[untyped-decorator]
async def sidecar_handler(config: dict[str, Any], data: Any, ctx: SdkContext) -> Any:
    behave = data["behave"]
    CALLED.add(str(data.get("token", "")))
    if behave == "echo":
        return data["value"]
    if behave == "fail":
        if data["retryable"]:
            raise HandlerError("the upstream is busy", type="upstream_busy", retryable=True)
        raise HandlerError("the order is unknown", type="order_unknown", retryable=False)
    if behave == "hang":
        await _hang_until_cancelled(data["token"])
    if behave == "chatty":
        ctx.log("line one")
        ctx.progress(0.5, "half way")
        ctx.log("line two")
        return {"done": True}
    if behave == "large":
        return {"blob": "x" * int(data["size"])}
    raise AssertionError(f"unknown behaviour {behave}")


class SidecarKind(RunnerKind):
    name = "sidecar"

    def __init__(self, runner: Runner, address: str) -> None:
        super().__init__(runner)
        self.config: JSONObject = {"address": address}

    def succeed(self, value: JSONObject) -> Case:
        case = Case(self.config, expect=_equals(value))
        case.data = {"behave": "echo", "value": value, "token": case.token}
        return case

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in CALLED

    def fail(self, retryable: bool) -> Case:
        return Case(
            self.config,
            {"behave": "fail", "retryable": retryable},
            error_type="upstream_busy" if retryable else "order_unknown",
        )

    def unusable(self) -> Case:
        # the handler's own config schema (from Describe) refuses it
        return Case({**self.config, "config": {"mode": 3}}, {"behave": "echo", "value": 1}, error_type="invalid_config")

    def hang(self) -> Case:
        case = Case(self.config)
        case.data = {"behave": "hang", "token": case.token}
        return case

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return case.token in STARTED

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return case.token in STOPPED  # the server saw the call end and stopped the handler

    def chatty(self) -> Case:
        return Case(self.config, {"behave": "chatty"}, logs=["line one", "line two"], progress=[0.5])

    def large(self, size: int) -> Case:
        return Case(self.config, {"behave": "large", "size": size}, expect=_blob_of(size))


@asynccontextmanager
async def open_sidecar() -> AsyncIterator[RunnerKind]:
    server, port = await start_server(sidecar_handler, "127.0.0.1:0")
    runner = SidecarRunner(health_interval=60, policy=SidecarPolicy.from_settings({"http_allow_networks": LOOPBACK}))
    try:
        yield SidecarKind(runner, f"127.0.0.1:{port}")
    finally:
        await runner.aclose()
        await server.stop(None)


# --- container: one-shot, and warm sidecars (Docker) ----------------------------------------


def _docker_ids(*filters: str) -> set[str]:
    args = ["docker", "ps", "-aq", "--no-trunc"]
    for f in filters:
        args += ["--filter", f]
    return set(subprocess.run(args, capture_output=True, text=True, check=True).stdout.split())


class ContainerKind(RunnerKind):
    """The one-shot test image (tests/integration/images/oneshot): the mode is picked by the input."""

    name = "container"
    # killing the container and reading its state comes after the budget
    margin = 1.5
    timeout_seconds = 2.0

    runner: ContainerRunner

    def __init__(self, runner: ContainerRunner, image: str) -> None:
        super().__init__(runner)
        self.image = image
        #: how many containers the runner created: a spy on the real engine's create
        self.created = 0
        create = runner.engine.create

        def counted(*args: Any, **kwargs: Any) -> str:
            self.created += 1
            return create(*args, **kwargs)

        runner.engine.create = counted  # type: ignore[method-assign]
        self._created_before: dict[str, int] = {}

    def _config(self, **extra: Any) -> JSONObject:
        return {"image": self.image, **extra}

    def _containers(self) -> set[str]:
        return _docker_ids(f"label={INSTANCE_LABEL}={self.runner.engine.instance}")

    def succeed(self, value: JSONObject) -> Case:
        case = Case(self._config(), value, expect=_equals(value, lambda o: o["echo"]["input"]))
        self._created_before[case.token] = self.created
        return case

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        # one case at a time in this suite: a container created since the case was made is its own
        return self.created > self._created_before[case.token]

    def fail(self, retryable: bool) -> Case:
        if retryable:  # exit 75, EX_TEMPFAIL
            return Case(self._config(), {"mode": "tempfail"}, error_type="exit_code")
        return Case(self._config(), {"mode": "declared"}, error_type="quota_exceeded")

    def unusable(self) -> Case:
        # an image that is not there (nothing is pulled)
        return Case(
            {**self._config(), "image": "neoactions-test/no-such-image:never"}, {}, error_type="image_not_found"
        )

    def hang(self) -> Case:
        return Case(self._config(), {"mode": "sleep"})

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return any(getattr(u, "message", "").startswith("oneshot handler: mode sleep") for u in updates)

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        return not await asyncio.to_thread(self._containers)

    def chatty(self) -> Case:
        return Case(self._config(), {"n": 1}, logs=["oneshot handler: mode echo"])

    def large(self, size: int) -> Case:
        return Case(
            self._config(max_output_bytes=4 * MIB),
            {"blob": "x" * size},
            expect=_blob_of(size, lambda o: o["echo"]["input"]),
        )


class ContainerSidecarKind(ContainerKind):
    """Warm sidecar containers of the python-sidecar test image (tests/integration/images/python-sidecar)."""

    name = "container_sidecar"

    def _config(self, **extra: Any) -> JSONObject:
        return {"image": self.image, "mode": "sidecar", **extra}

    def succeed(self, value: JSONObject) -> Case:
        return Case(self._config(), value, expect=_equals(value, lambda o: o["echo"]))

    async def ran(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        # a warm container may be started for the pool; the handler running shows in its first log line
        return any(getattr(u, "message", "").startswith("mode echo") for u in updates)

    def fail(self, retryable: bool) -> Case:
        assert not retryable
        return Case(self._config(), {"mode": "fail"}, error_type="NonRetryableError")

    def hang(self) -> Case:
        return Case(self._config(), {"mode": "sleep", "seconds": 600})

    async def started(self, case: Case, updates: list[RunnerUpdate]) -> bool:
        return any(getattr(u, "message", "").startswith("mode sleep") for u in updates)

    async def released(self, case: Case, context: ExecutionContext) -> bool:
        # the container that ran the stopped call is removed; the idle warm ones stay
        pools = self.runner.pools()
        if any(p.shares.held(context.tenant) for p in pools):
            return False
        members = {m.id for p in pools for m in p.members()}
        return await asyncio.to_thread(self._containers) == members

    def chatty(self) -> Case:
        return Case(self._config(), {"n": 1}, logs=["mode echo, attempt 1"], progress=[0.5])

    def large(self, size: int) -> Case:
        return Case(self._config(), {"blob": "x" * size}, expect=_blob_of(size, lambda o: o["echo"]))


@asynccontextmanager
async def open_container(kind: type[ContainerKind], image: str) -> AsyncIterator[RunnerKind]:
    runner = ContainerRunner({"container_health_interval": 3600})
    opened = kind(runner, image)
    try:
        yield opened
    finally:
        await runner.aclose()
        left = await asyncio.to_thread(opened._containers)
        assert not left, f"containers of the {kind.name} runner left after its close: {left}"
