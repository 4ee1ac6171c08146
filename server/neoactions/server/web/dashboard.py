"""The web dashboard at ``/``: server-rendered pages (Jinja2, autoescaped) and one small static
script for live views (Server-Sent Events from :meth:`Engine.watch`). No build step.

Sign-in: the API key is kept in an ``HttpOnly``, ``SameSite=Strict`` cookie and checked on every
request through the engine (a revoked key stops working at once). Every form that changes
something carries a CSRF token derived from the key (HMAC), and a cross-site ``Origin`` is
refused. Controls a role may not use are not shown; the engine refuses them anyway. Pages call
only :class:`~neoactions.server.engine.Engine` operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from neoactions.domain.errors import (
    InvalidArgument,
    NeoActionsError,
    PermissionDenied,
    Unauthenticated,
)
from neoactions.domain.keys import ROLES
from neoactions.domain.model import Event, ExecutionStatus, ExecutionUpdate, utcnow
from neoactions.server.access import Caller, Permission
from neoactions.server.bus import UpdateFilter
from neoactions.server.engine import Engine
from neoactions.server.store import AuditFilter, ExecutionFilter
from neoactions.server.web.gateway import authenticate, request_id
from neoactions.server.web.problems import http_status

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
KEY_COOKIE = "na_key"
TENANT_COOKIE = "na_tenant"
_MAX_FORM_BYTES = 512 * 1024
_PAGE = 50
_HEARTBEAT_SECONDS = 15.0
_CSRF_LABEL = b"neoactions dashboard csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """The signed-in user of one request."""

    caller: Caller
    tenant: str
    csrf: str

    def may(self, permission: Permission) -> bool:
        role = self.caller.role
        return role is None or permission in role.permissions

    @property
    def role_label(self) -> str:
        return self.caller.role.value if self.caller.role is not None else "open access"


def csrf_token(key: str) -> str:
    return hmac.new(key.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()[:40]


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pretty"] = _json
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M:%S") if d else ""
    return env


def update_json(u: ExecutionUpdate) -> dict[str, Any]:
    """An update as the live views receive it (rendered with ``textContent``: inert)."""
    return {
        "id": u.execution_id,
        "kind": u.kind.value,
        "action": u.action_name,
        "status": u.status.value if u.status is not None else "",
        "attempt": u.attempt,
        "message": u.message,
        "event_id": u.event_id,
        "time": u.time.strftime("%Y-%m-%d %H:%M:%S"),
        "error": u.error.message if u.error is not None else "",
    }


Page = Callable[[Request, Session], Awaitable[Response]]


class Dashboard:
    """The pages over one engine; ``stopping`` ends live streams at shutdown."""

    def __init__(self, engine: Engine, stopping: asyncio.Event) -> None:
        self._engine = engine
        self._stopping = stopping
        self._env = _environment()

    # --- plumbing ------------------------------------------------------------------
    def routes(self) -> list[Route]:
        page = self._page
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", page(self.logout, mutation=True), methods=["POST"]),
            Route("/actions", page(self.actions), methods=["GET"]),
            Route("/actions", page(self.apply, mutation=True), methods=["POST"]),
            Route("/actions/{name}", page(self.action), methods=["GET"]),
            Route("/actions/{name}/enabled", page(self.set_enabled, mutation=True), methods=["POST"]),
            Route("/actions/{name}/test", page(self.test_event, mutation=True), methods=["POST"]),
            Route("/executions", page(self.executions), methods=["GET"]),
            Route("/executions/stream", page(self.stream), methods=["GET"]),
            Route("/executions/{id}", page(self.execution), methods=["GET"]),
            Route("/executions/{id}/cancel", page(self.cancel, mutation=True), methods=["POST"]),
            Route("/executions/{id}/retry", page(self.retry, mutation=True), methods=["POST"]),
            Route("/dead-letters", page(self.dead_letters), methods=["GET"]),
            Route("/dead-letters/requeue", page(self.requeue, mutation=True), methods=["POST"]),
            Route("/stats", page(self.stats), methods=["GET"]),
            Route("/keys", page(self.keys), methods=["GET"]),
            Route("/keys", page(self.create_key, mutation=True), methods=["POST"]),
            Route("/keys/{id}/revoke", page(self.revoke_key, mutation=True), methods=["POST"]),
            Route("/audit", page(self.audit), methods=["GET"]),
            Route("/plugins", page(self.plugins), methods=["GET"]),
        ]

    def render(self, request: Request, name: str, session: Session | None, status: int = 200, **ctx: Any) -> Response:
        html = self._env.get_template(name).render(
            session=session,
            path=request.url.path,
            notice=request.query_params.get("notice", "")[:300],
            Permission=Permission,
            **ctx,
        )
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    async def _session(self, request: Request) -> Session:
        key = request.cookies.get(KEY_COOKIE, "")
        tenant = request.cookies.get(TENANT_COOKIE, "")
        if not key or not tenant:
            raise Unauthenticated("sign in", reason="SIGN_IN")
        caller = await authenticate(self._engine, key, request_id(request))
        return Session(caller, tenant, csrf_token(key))

    async def _form(self, request: Request, session: Session) -> dict[str, str]:
        """The posted form, after the same-origin and CSRF checks."""
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise PermissionDenied("a cross-site form was refused", reason="CSRF")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM_BYTES:
                raise InvalidArgument.field("form", "is too large", reason="PAYLOAD_TOO_LARGE")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
            raise PermissionDenied("the form's CSRF token is missing or wrong; reload the page", reason="CSRF")
        return form

    def _page(self, handler: Callable[..., Awaitable[Response]], mutation: bool = False) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            try:
                session = await self._session(request)
            except Unauthenticated:
                return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
            try:
                if mutation:
                    return await handler(request, session, await self._form(request, session))
                return await handler(request, session)
            except NeoActionsError as exc:
                return self.render(request, "error.html", session, status=http_status(exc), error=exc)
            except Exception:
                log.exception("dashboard %s %s failed", request.method, request.url.path)
                error = NeoActionsError("internal error; see the server's log", reason="INTERNAL")
                return self.render(request, "error.html", session, status=500, error=error)

        return endpoint

    @staticmethod
    def _back(path: str, notice: str) -> Response:
        return RedirectResponse(f"{path}?{urlencode({'notice': notice})}", status_code=303)

    # --- sign-in -------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        return RedirectResponse("/executions", status_code=303)

    async def login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        return self.render(request, "login.html", None, status=status, error=error)

    async def login(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return await self.login_form(request, "a cross-site sign-in was refused", 403)
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace")).items()}
        key = form.get("api_key", "").strip()
        try:
            caller = await authenticate(self._engine, key, request_id(request))
        except Unauthenticated:
            return await self.login_form(request, "that API key is not valid", 401)
        tenant = form.get("tenant", "").strip() or caller.home_tenant or "admin"
        try:
            await self._engine.list_executions(caller, tenant, ExecutionFilter(), 1, "")
        except NeoActionsError as exc:
            if not isinstance(exc, PermissionDenied):
                return await self.login_form(request, f"tenant {tenant!r}: {exc.message}", 403)
        response = RedirectResponse("/executions", status_code=303)
        secure = request.url.scheme == "https"
        for name, value in ((KEY_COOKIE, key), (TENANT_COOKIE, tenant)):
            response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    async def logout(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        response = RedirectResponse("/login", status_code=303)
        for name in (KEY_COOKIE, TENANT_COOKIE):
            response.delete_cookie(name, path="/", httponly=True, samesite="strict")
        return response

    # --- actions -------------------------------------------------------------------
    async def actions(self, request: Request, session: Session) -> Response:
        page = await self._engine.list_actions(
            session.caller, session.tenant, _PAGE, request.query_params.get("page", "")
        )
        return self.render(request, "actions.html", session, actions=page.items, next_page=page.next_page_token)

    async def apply(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        """Create or update the actions of a declarative YAML text (the ``neoactions apply`` format)."""
        from neoactions.client.declarative import parse_yaml  # the one parser of that format
        from neoactions.domain import convert

        documents = parse_yaml(form.get("yaml", ""), "form")
        done = []
        for doc in documents:
            action = convert.action_from_pb(doc.action, session.tenant, doc.name)
            try:
                current = await self._engine.get_action(session.caller, session.tenant, doc.name)
            except NeoActionsError as exc:
                if http_status(exc) != 404:
                    raise
                stored = await self._engine.create_action(session.caller, action)
                done.append(f"{stored.name} created")
            else:
                stored = await self._engine.update_action(session.caller, action, current.version)
                done.append(f"{stored.name} v{stored.version}")
            if doc.enabled is not None and stored.enabled != doc.enabled:
                await self._engine.set_action_enabled(session.caller, session.tenant, doc.name, doc.enabled)
        return self._back("/actions", "applied: " + ", ".join(done))

    async def action(self, request: Request, session: Session, **extra: Any) -> Response:
        name = request.path_params["name"]
        action = await self._engine.get_action(session.caller, session.tenant, name)
        recent = await self._engine.list_executions(
            session.caller, session.tenant, ExecutionFilter(action_name=name), 20, ""
        )
        return self.render(
            request,
            "action.html",
            session,
            action=action,
            executions=recent.items,
            **{"explained": None, "tested": "", **extra},
        )

    async def set_enabled(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        name = request.path_params["name"]
        enabled = form.get("enabled") == "true"
        await self._engine.set_action_enabled(session.caller, session.tenant, name, enabled)
        return self._back(f"/actions/{name}", "enabled" if enabled else "disabled")

    async def test_event(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        """Explain an event against this action (never runs it)."""
        name = request.path_params["name"]
        text = form.get("event", "")
        try:
            doc = json.loads(text or "{}")
        except ValueError as exc:
            raise InvalidArgument.field("event", f"malformed JSON: {exc}", reason="MALFORMED_JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("data", {}), dict):
            raise InvalidArgument.field("event", "an object with type and data (an object)")
        event = Event(
            id="",
            tenant=session.tenant,
            type=str(doc.get("type", "")),
            data=doc.get("data", {}),
            source=str(doc.get("source", "")),
            subject=str(doc.get("subject", "")),
            metadata=doc.get("metadata", {}) if isinstance(doc.get("metadata", {}), dict) else {},
        )
        [(explanation, _)] = await self._engine.test_event(session.caller, session.tenant, event, name)
        return await self.action(request, session, explained={"error": "", **explanation.to_dict()}, tested=text)

    # --- executions ------------------------------------------------------------------
    def _filter(self, request: Request) -> ExecutionFilter:
        q = request.query_params
        status = q.get("status", "")
        try:
            parsed = ExecutionStatus(status) if status else None
        except ValueError:
            raise InvalidArgument.field("status", f"not a status: {status[:40]!r}") from None
        return ExecutionFilter(
            action_name=q.get("action", ""),
            status=parsed,
            correlation_id=q.get("correlation_id", ""),
            event_id=q.get("event_id", ""),
            error_type=q.get("error_type", ""),
        )

    async def executions(self, request: Request, session: Session) -> Response:
        flt = self._filter(request)
        page = await self._engine.list_executions(
            session.caller, session.tenant, flt, _PAGE, request.query_params.get("page", "")
        )
        live = urlencode({k: v for k, v in request.query_params.items() if k in ("action", "status", "correlation_id")})
        return self.render(
            request,
            "executions.html",
            session,
            executions=page.items,
            next_page=page.next_page_token,
            filter=flt,
            statuses=[s.value for s in ExecutionStatus],
            stream_url="/executions/stream" + (f"?{live}" if live else ""),
        )

    async def stream(self, request: Request, session: Session) -> Response:
        """Server-Sent Events: each update the filter accepts, as it happens (``Last-Event-ID``
        resumes after the last one received)."""
        q = request.query_params
        status = q.get("status", "")
        flt = UpdateFilter(
            tenant=session.tenant,
            action_name=q.get("action", ""),
            correlation_id=q.get("correlation_id", ""),
            execution_id=q.get("execution", ""),
        )
        # refused (a publisher key, another tenant) before streaming: an error page, not a stream
        await self._engine.list_executions(session.caller, session.tenant, ExecutionFilter(), 1, "")
        resume = request.headers.get("last-event-id", "")
        return StreamingResponse(
            self._events(session.caller, flt, resume, status),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def _events(self, caller: Caller, flt: UpdateFilter, resume: str, status: str) -> AsyncIterator[bytes]:
        """The stream's body. Everything it holds (the subscription, its tasks) exists only while
        it is iterated, and its ``finally`` lets go of all of it."""
        updates = self._engine.watch(caller, flt, resume)
        pending: asyncio.Future[Any] = asyncio.ensure_future(anext(updates))
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        try:
            # subscribed before the browser hears the stream is open (what it sees next is live)
            await asyncio.wait({pending}, timeout=0.05)
            yield b"retry: 2000\n\n"
            while True:
                done, _ = await asyncio.wait({pending, stop}, timeout=_HEARTBEAT_SECONDS, return_when="FIRST_COMPLETED")
                if stop in done:
                    return
                if pending not in done:
                    yield b": keep-alive\n\n"
                    continue
                try:
                    update, token = pending.result()
                except (StopAsyncIteration, NeoActionsError):
                    return
                pending = asyncio.ensure_future(anext(updates))
                if status and (update.status is None or update.status.value != status):
                    continue
                data = json.dumps(update_json(update), ensure_ascii=True)
                yield f"id: {token}\nevent: update\ndata: {data}\n\n".encode()
        finally:
            for fut in (pending, stop):
                fut.cancel()
            with contextlib.suppress(BaseException):
                await pending
            await updates.aclose()

    async def execution(self, request: Request, session: Session) -> Response:
        ex = await self._engine.get_execution(session.caller, session.tenant, request.path_params["id"])
        steps = await self._engine.workflow_steps(session.caller, session.tenant, ex.id)
        return self.render(
            request,
            "execution.html",
            session,
            ex=ex,
            steps=steps,
            stream_url="/executions/stream?" + urlencode({"execution": ex.id}),
        )

    async def cancel(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        ex = await self._engine.cancel_execution(
            session.caller, session.tenant, request.path_params["id"], "cancelled from the dashboard"
        )
        return self._back(f"/executions/{ex.id}", "cancelled")

    async def retry(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        ex = await self._engine.retry_execution(session.caller, session.tenant, request.path_params["id"])
        return self._back(form.get("back", "") or f"/executions/{ex.id}", f"requeued {ex.id}")

    # --- dead letters ----------------------------------------------------------------
    async def dead_letters(self, request: Request, session: Session) -> Response:
        flt = self._filter(request)
        page = await self._engine.list_dead_letters(
            session.caller, session.tenant, flt, _PAGE, request.query_params.get("page", "")
        )
        return self.render(
            request, "dead_letters.html", session, executions=page.items, next_page=page.next_page_token, filter=flt
        )

    async def requeue(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        flt = ExecutionFilter(action_name=form.get("action", ""), error_type=form.get("error_type", ""))
        count = await self._engine.requeue_dead_letters(session.caller, session.tenant, flt)
        return self._back("/dead-letters", f"requeued {count} dead letters")

    # --- stats ---------------------------------------------------------------------
    async def stats(self, request: Request, session: Session) -> Response:
        """Per action: the engine's stats and health over the last hour, and the success rate and
        p95 of each of the last 12 hours (``GetOverview``)."""
        now = utcnow()
        total, actions, health = await self._engine.get_overview(
            session.caller, session.tenant, now - timedelta(hours=1), now
        )
        levels = {h.action: h for h in health}
        chart = []
        for back in range(11, -1, -1):
            end = now - timedelta(hours=back)
            hour, _, _ = await self._engine.get_overview(session.caller, session.tenant, end - timedelta(hours=1), end)
            ended = hour.succeeded + hour.failed
            chart.append(
                {
                    "hour": end.strftime("%H:%M"),
                    "ok": hour.succeeded,
                    "bad": hour.failed,
                    "rate": 100.0 * hour.succeeded / ended if ended else 0.0,
                    "empty": not ended,
                    "p95": hour.p95_seconds * 1000,
                }
            )
        return self.render(
            request, "stats.html", session, total=total, actions=actions, health=levels, chart=chart, sampled=0
        )

    # --- admin pages (when the engine has them) ----------------------------------------
    async def keys(self, request: Request, session: Session, created: Any = None, token: str = "") -> Response:
        page = await self._engine.list_api_keys(
            session.caller, session.tenant, _PAGE, request.query_params.get("page", "")
        )
        return self.render(
            request,
            "keys.html",
            session,
            keys=page.items,
            next_page=page.next_page_token,
            roles=ROLES,
            created=created,
            token=token,
        )

    async def create_key(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        """A new key; its token is shown in this one answer (never in a URL, never again)."""
        days = form.get("expires_days", "").strip()
        try:
            ttl = float(days) * 86400 if days else 0.0
        except ValueError:
            raise InvalidArgument.field("expires_days", f"not a number of days: {days[:20]!r}") from None
        key, token = await self._engine.create_api_key(
            session.caller, session.tenant, form.get("name", "").strip(), form.get("role", ""), ttl_seconds=ttl
        )
        return await self.keys(request, session, created=key, token=token)

    async def revoke_key(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        key = await self._engine.revoke_api_key(session.caller, session.tenant, request.path_params["id"])
        return self._back("/keys", f"revoked {key.name}")

    async def audit(self, request: Request, session: Session) -> Response:
        flt = AuditFilter(kind=request.query_params.get("kind", ""))
        page = await self._engine.list_audit_entries(
            session.caller, session.tenant, flt, _PAGE, request.query_params.get("page", "")
        )
        return self.render(request, "audit.html", session, entries=page.items, next_page=page.next_page_token)

    async def plugins(self, request: Request, session: Session) -> Response:
        plugins = await self._engine.list_plugins(session.caller, session.tenant)
        query = request.query_params.get("q")
        found = None if query is None else await self._engine.search_plugins(session.caller, session.tenant, query)
        return self.render(request, "plugins.html", session, plugins=plugins, query=query or "", found=found)


__all__ = ["KEY_COOKIE", "STATIC_DIR", "TEMPLATES_DIR", "TENANT_COOKIE", "Dashboard", "Session", "csrf_token"]
