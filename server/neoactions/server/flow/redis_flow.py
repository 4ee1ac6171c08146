"""Flow control shared by every worker, in Redis.

Each operation is one Lua script (one EVALSHA, atomic): see
:mod:`neoactions.server.flow.lua` for the algorithms and ``docs/flow-control.md``
for the keys. Calls made while a pipeline is on the wire go together in the next
one — one round trip for every attempt admitted, recorded or released meanwhile
(each script stays atomic; they were never atomic together). Redis errors are
translated here, at the edge: a lost connection is ``Unavailable`` (the caller
delays the execution), a script error ``Internal``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from neoactions.domain.errors import Internal, Unavailable
from neoactions.server.flow import lua
from neoactions.server.flow.common import new_lease_id, rate_windows
from neoactions.server.flow.config import FlowControlConfig
from neoactions.server.flow.port import (
    Admission,
    AdmissionRequest,
    Admitted,
    BreakerState,
    Lease,
    RefusalReason,
    Refused,
)
from neoactions.server.redis_client import redis_from_url

_US = 1_000_000
#: script calls per pipeline at most
_PIPELINE_MAX = 512
#: keys remembered at most (then forgotten all at once)
_KEY_CACHE = 10_000
#: an attempt with no limit to take is admitted without a round trip while its target's
#: breaker was seen closed this recently (by an admission or a success of this process) and
#: no failure of that target was reported here since
CLOSED_TRUST_SECONDS = 1.0

_Call = tuple[AsyncScript, Sequence[str], Sequence[str | int | float], "asyncio.Future[Any]"]


def _part(text: str) -> str:
    """Escape one key component so ``:`` in a name cannot make two keys collide,
    and braces cannot pick a Redis Cluster hash slot."""
    return text.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def _settle(done: asyncio.Future[Any], outcome: Any) -> None:
    if done.done():  # its caller left
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisFlowControl:
    """:class:`~neoactions.server.flow.port.FlowControl` shared by all workers through Redis.

    Every worker makes its own instance (own connection pool) over the same Redis
    and ``key_prefix``. ``clock`` (seconds) is for tests: by default the Redis
    server's clock is used, so workers' clock skew cannot loosen a limit.
    """

    def __init__(
        self,
        client: Redis,
        config: FlowControlConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        owns_client: bool = False,
    ) -> None:
        self._redis = client
        self._config = config or FlowControlConfig()
        self._clock = clock
        self._owns_client = owns_client
        self._admit = self._script(lua.ADMIT)
        self._release = self._script(lua.RELEASE)
        self._extend = self._script(lua.EXTEND)
        self._record = self._script(lua.RECORD)
        self._finish = self._script(lua.FINISH)
        self._state = self._script(lua.STATE)
        self._calls: list[_Call] = []
        #: built keys by their parts (the same few actions and targets, every attempt)
        self._keys: dict[tuple[str, ...], str] = {}
        #: target -> when (this process's clock) its breaker was last seen closed
        self._closed_seen: dict[str, float] = {}
        self._sending: asyncio.Task[None] | None = None
        breaker = self._config.breaker
        # Long enough to outlive an open breaker's cool-down and its probe, and the
        # window of counted failures; an idle target's breaker then simply vanishes.
        self._breaker_ttl_ms = math.ceil(
            2 * (max(breaker.window_seconds, breaker.cooldown_seconds) + self._config.lease_ttl_seconds) * 1000
        )

    @classmethod
    def from_url(
        cls, url: str, config: FlowControlConfig | None = None, *, clock: Callable[[], float] | None = None
    ) -> RedisFlowControl:
        """A flow control with its own connection pool to ``url`` (closed by ``aclose``)."""
        return cls(redis_from_url(url), config, clock=clock, owns_client=True)

    @property
    def config(self) -> FlowControlConfig:
        return self._config

    def _script(self, source: str) -> AsyncScript:
        # register_script runs EVALSHA and falls back to EVAL (loading the script)
        # only after a NOSCRIPT reply, e.g. after a Redis restart.
        return self._redis.register_script(source)

    def _now(self) -> str:
        return "" if self._clock is None else str(round(self._clock() * _US))

    def _key(self, *parts: str) -> str:
        key = self._keys.get(parts)
        if key is None:
            if len(self._keys) >= _KEY_CACHE:
                self._keys.clear()
            key = self._keys[parts] = ":".join((self._config.key_prefix, *(_part(p) for p in parts)))
        return key

    def _slots_key(self, tenant: str, action: str) -> str:
        return self._key("conc", tenant, action)

    def _breaker_key(self, target: str) -> str:
        return self._key("breaker", target)

    async def _call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls.append((script, keys, args, done))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send(), name="flow-control-pipeline")
        return await done

    async def _send(self) -> None:
        try:
            while self._calls:
                batch, self._calls = self._calls[:_PIPELINE_MAX], self._calls[_PIPELINE_MAX:]
                try:
                    replies = await self._pipeline(batch)
                except RedisError as exc:
                    for *_, done in batch:
                        _settle(done, Unavailable(f"flow control state in Redis is unreachable: {exc}"))
                    continue
                for (*_, done), reply in zip(batch, replies, strict=True):
                    if isinstance(reply, ResponseError):
                        _settle(done, Internal(f"flow control script failed: {reply}"))
                    elif isinstance(reply, Exception):
                        _settle(done, Unavailable(f"flow control state in Redis is unreachable: {reply}"))
                    else:
                        _settle(done, reply)
        finally:
            self._sending = None

    async def _pipeline(self, batch: Sequence[_Call]) -> list[Any]:
        """One round trip for ``batch``; the scripts are loaded again if Redis forgot them (a restart)."""
        for _ in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in replies):
                return replies
            for script in {id(c[0]): c[0] for c in batch}.values():
                script.sha = await self._redis.script_load(script.script)
        return replies

    # --- admission ------------------------------------------------------------------
    async def admit(self, request: AdmissionRequest) -> Admission:
        cfg = self._config
        tenant_limit = request.tenant_rate_limit
        if tenant_limit is None:
            tenant_limit = cfg.tenant_limit(request.tenant)
        keys = [self._slots_key(request.tenant, request.action_name)]
        log_args: list[str | int] = []
        for scope, owner, limit, reason in (
            ("action", (request.tenant, request.action_name), request.rate_limit, RefusalReason.RATE_LIMIT),
            ("tenant", (request.tenant,), tenant_limit, RefusalReason.TENANT_RATE_LIMIT),
        ):
            for n, window in rate_windows(limit):
                keys.append(self._key("rate", scope, *owner, f"{int(window)}s"))
                log_args += [n, round(window * _US), reason.value]
        nlogs = len(keys) - 1
        lease_id = new_lease_id(request.execution_id)
        ttl = request.lease_seconds or cfg.lease_ttl_seconds
        if request.max_concurrency <= 0 and not nlogs and self._trusted_closed(request.target):
            # nothing to take and nothing to check: no concurrency slot, no rate log, a breaker
            # this process saw closed within CLOSED_TRUST_SECONDS (the only staleness allowed)
            expires_at = self._local_now() + ttl
            return Admitted(
                Lease(lease_id, request.tenant, request.action_name, request.target, expires_at, taken=False)
            )
        if request.target:
            keys.append(self._breaker_key(request.target))
        args: list[str | int] = [
            self._now(),
            lease_id,
            round(ttl * _US),
            max(0, request.max_concurrency),
            round(cfg.busy_retry_seconds * _US),
            round(cfg.breaker.cooldown_seconds * _US),
            self._breaker_ttl_ms,
            nlogs,
            *log_args,
        ]
        reply = await self._call(self._admit, keys, args)
        if int(reply[0]) == 0:
            if request.target:
                self._closed_seen.pop(request.target, None)
            return Refused(RefusalReason(_text(reply[1])), int(reply[2]) / _US)
        if request.target and int(reply[3]) == 0:
            self._seen_closed(request.target)  # admitted, and not as a half-open probe
        lease = Lease(
            id=lease_id,
            tenant=request.tenant,
            action_name=request.action_name,
            target=request.target,
            expires_at=int(reply[2]) / _US,
            probe=int(reply[3]) == 1,
        )
        return Admitted(lease)

    # --- leases ---------------------------------------------------------------------
    def _lease_keys(self, lease: Lease) -> list[str]:
        keys = [self._slots_key(lease.tenant, lease.action_name)]
        if lease.target:
            keys.append(self._breaker_key(lease.target))
        return keys

    async def release(self, lease: Lease) -> None:
        if lease.taken:
            await self._call(self._release, self._lease_keys(lease), ["", lease.id])

    async def extend(self, lease: Lease, seconds: float) -> bool:
        if not lease.taken:
            lease.expires_at = self._local_now() + seconds
            return True
        reply = await self._call(self._extend, self._lease_keys(lease), [self._now(), lease.id, round(seconds * _US)])
        if int(reply) == 0:
            return False
        lease.expires_at = int(reply) / _US
        return True

    # --- circuit breaker -----------------------------------------------------------
    def _outcome_args(self, success: bool, from_probe: str) -> list[str | int | float]:
        b = self._config.breaker
        return [
            "1" if success else "0",
            from_probe,
            round(b.cooldown_seconds * _US),
            round(b.bucket_seconds * _US),
            b.window_buckets,
            b.failure_threshold,
            repr(b.failure_rate_threshold),
            b.minimum_calls,
            self._breaker_ttl_ms,
        ]

    async def record_outcome(self, target: str, success: bool, *, lease: Lease | None = None) -> BreakerState:
        if not target:
            return BreakerState.CLOSED
        from_probe = "" if lease is None else ("1" if lease.probe else "0")
        args = [self._now(), *self._outcome_args(success, from_probe)]
        state = BreakerState(_text(await self._call(self._record, [self._breaker_key(target)], args)))
        if success and state is BreakerState.CLOSED:
            self._seen_closed(target)
        else:
            # a failing target is checked in Redis on every admission until it does well again
            self._closed_seen.pop(target, None)
        return state

    async def finish(self, lease: Lease, success: bool) -> None:
        if not lease.taken:
            # nothing to give back; a success changes nothing when only failures count (a
            # success that is no probe never closes nor opens a breaker: see lua.RECORD)
            if lease.target and not (success and self._config.breaker.failure_rate_threshold == 0):
                await self.record_outcome(lease.target, success, lease=lease)
            return
        if not success:
            self._closed_seen.pop(lease.target, None)
        args = [self._now(), lease.id, *self._outcome_args(success, "1" if lease.probe else "0")]
        await self._call(self._finish, self._lease_keys(lease), args)

    # --- the closed breakers this process trusts --------------------------------------
    def _local_now(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()

    def _trusted_closed(self, target: str) -> bool:
        if not target:
            return True
        seen = self._closed_seen.get(target)
        return seen is not None and self._local_now() - seen < CLOSED_TRUST_SECONDS

    def _seen_closed(self, target: str) -> None:
        if len(self._closed_seen) >= _KEY_CACHE:
            self._closed_seen.clear()
        self._closed_seen[target] = self._local_now()

    async def breaker_state(self, target: str) -> BreakerState:
        args: list[str | int] = [self._now(), round(self._config.breaker.cooldown_seconds * _US)]
        reply = await self._call(self._state, [self._breaker_key(target)], args)
        return BreakerState(_text(reply))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


__all__ = ["RedisFlowControl"]
