"""The Lua scripts of :class:`~neoactions.server.flow.redis_flow.RedisFlowControl`.

Each public operation is one script, run with EVALSHA: one round trip, and atomic,
so every worker sees the limits taken all together or not at all.

Times are integer microseconds (exact in a Lua double up to 2^53, i.e. for any
epoch time). ``ARGV[1]`` is "now": empty means the Redis server's clock (``TIME``),
so all workers share one clock and their own clocks' skew does not matter; tests
pass an explicit value from a clock they control.

Keys (see ``docs/flow-control.md``):

* ``conc`` — ZSET lease id → expiry: the action's concurrency leases;
* ``rate`` — ZSET lease id → admission time: a sliding-window log per limit;
* ``breaker`` — HASH ``state`` (absent = closed, ``open``), ``opened_at``,
  ``probe``/``probe_until`` (the outstanding half-open probe), and ``f:<bucket>``,
  ``c:<bucket>`` (failures and calls per bucket while closed).
"""

from __future__ import annotations

# Shared prologue: "now" and effect replication (needed on Redis < 7 to write after TIME).
_NOW = """
local function now_us()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now = now_us()
local function extend_ttl(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

#: KEYS: conc, one rate log per limited window, then the breaker if there is a target.
#: ARGV: now, lease id, lease ttl, max concurrency, busy retry, cooldown,
#:       breaker key ttl (ms), number of rate logs, then (limit, window, reason) per log.
#: Returns {1, now, expiry, probe} or {0, reason, wait}.
ADMIT = (
    _NOW
    + """
local lease, ttl = ARGV[2], tonumber(ARGV[3])
local max_conc, busy = tonumber(ARGV[4]), tonumber(ARGV[5])
local cooldown, breaker_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local nlogs = tonumber(ARGV[8])
local breaker = KEYS[2 + nlogs]
local best_reason, best_wait = false, -1
-- every limit is checked before any is taken; the longest wait binds (ties: first listed)
local function refuse(reason, wait)
  if wait > best_wait then best_reason, best_wait = reason, wait end
end

local probe = 0
if breaker then
  local b = redis.call('HMGET', breaker, 'state', 'opened_at', 'probe', 'probe_until')
  if b[1] == 'open' then
    local reopen_at = tonumber(b[2]) + cooldown
    if now < reopen_at then
      refuse('breaker_open', reopen_at - now)
    elseif b[3] and tonumber(b[4]) > now then
      refuse('breaker_open', math.min(busy, tonumber(b[4]) - now))
    else
      probe = 1
    end
  end
end

-- expired leases are a dead worker's: they stop counting
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if max_conc > 0 then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= max_conc then
    local e = redis.call('ZRANGE', KEYS[1], n - max_conc, n - max_conc, 'WITHSCORES')
    refuse('max_concurrency', math.min(busy, tonumber(e[2]) - now))
  end
end

local logs = {}
for i = 2, 1 + nlogs do
  local a = 9 + (i - 2) * 3
  local limit, window, reason = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2]
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= limit then
    -- admission is possible once the (n - limit)-th oldest entry leaves the window
    local e = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
    refuse(reason, tonumber(e[2]) + window - now)
  end
  logs[#logs + 1] = {KEYS[i], window}
end

if best_reason then return {0, best_reason, best_wait} end

local expiry = now + ttl
redis.call('ZADD', KEYS[1], expiry, lease)
extend_ttl(KEYS[1], math.ceil(ttl / 1000) + 1000)
for _, log in ipairs(logs) do
  redis.call('ZADD', log[1], now, lease)
  extend_ttl(log[1], math.ceil(log[2] / 1000) + 1000)
end
if probe == 1 then
  redis.call('HSET', breaker, 'probe', lease, 'probe_until', expiry)
  extend_ttl(breaker, breaker_ttl + math.ceil(ttl / 1000))
end
return {1, now, expiry, probe}
"""
)


#: KEYS: conc[, breaker]. ARGV: now, lease id, new ttl. Returns the new expiry or 0 if the lease was lost.
EXTEND = (
    _NOW
    + """
local lease, ttl = ARGV[2], tonumber(ARGV[3])
local expiry = redis.call('ZSCORE', KEYS[1], lease)
if not expiry or tonumber(expiry) <= now then
  redis.call('ZREM', KEYS[1], lease)
  return 0
end
local new_expiry = now + ttl
redis.call('ZADD', KEYS[1], new_expiry, lease)
extend_ttl(KEYS[1], math.ceil(ttl / 1000) + 1000)
if KEYS[2] and redis.call('HGET', KEYS[2], 'probe') == lease then
  redis.call('HSET', KEYS[2], 'probe_until', new_expiry)
  extend_ttl(KEYS[2], math.ceil(ttl / 1000) + 1000)
end
return new_expiry
"""
)

#: the breaker's bookkeeping of one outcome (RECORD and FINISH). ``args`` is ARGV from
#: ``first`` on: success (1/0), from the probe ('1', '0', '' = unknown), cooldown, bucket
#: width, buckets, failure threshold, failure rate threshold, minimum calls, key ttl (ms).
#: Returns the state after the outcome.
_RECORD_FN = """
local function record(key, first)
  local success, from_probe = ARGV[first] == '1', ARGV[first + 1]
  local cooldown, width, nbuckets = tonumber(ARGV[first + 2]), tonumber(ARGV[first + 3]), tonumber(ARGV[first + 4])
  local threshold, rate, min_calls = tonumber(ARGV[first + 5]), tonumber(ARGV[first + 6]), tonumber(ARGV[first + 7])
  local key_ttl = tonumber(ARGV[first + 8])

  local b = redis.call('HMGET', key, 'state', 'opened_at')
  if b[1] == 'open' then
    -- cooling down: late outcomes change nothing; half-open: only the probe decides
    if now < tonumber(b[2]) + cooldown then return 'open' end
    if from_probe == '0' then return 'half_open' end
    if success then
      redis.call('DEL', key)
      return 'closed'
    end
    redis.call('HSET', key, 'opened_at', now)
    redis.call('HDEL', key, 'probe', 'probe_until')
    extend_ttl(key, key_ttl)
    return 'open'
  end

  -- closed: with no failure rate configured only failures count
  if success and rate == 0 then return 'closed' end
  local bucket = math.floor(now / width)
  if not success then redis.call('HINCRBY', key, 'f:' .. bucket, 1) end
  redis.call('HINCRBY', key, 'c:' .. bucket, 1)
  local oldest = bucket - nbuckets + 1
  local failures, calls = 0, 0
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local kind, n = string.match(fields[i], '^([fc]):(%-?%d+)$')
    if kind then
      if tonumber(n) < oldest then
        redis.call('HDEL', key, fields[i])
      elseif kind == 'f' then
        failures = failures + tonumber(fields[i + 1])
      else
        calls = calls + tonumber(fields[i + 1])
      end
    end
  end
  -- a success never opens a breaker
  if not success and ((threshold > 0 and failures >= threshold)
      or (rate > 0 and calls >= min_calls and failures >= rate * calls)) then
    redis.call('DEL', key)
    redis.call('HSET', key, 'state', 'open', 'opened_at', now)
    redis.call('PEXPIRE', key, key_ttl)
    return 'open'
  end
  extend_ttl(key, key_ttl)
  return 'closed'
end
"""

#: give the lease back (RELEASE and FINISH): its concurrency slot, and the half-open probe if it is one
_RELEASE_LEASE = """
redis.call('ZREM', KEYS[1], lease)
if KEYS[2] and redis.call('HGET', KEYS[2], 'probe') == lease then
  redis.call('HDEL', KEYS[2], 'probe', 'probe_until')
end
return 1
"""

#: KEYS: conc[, breaker]. ARGV: now (unused), lease id.
RELEASE = "local lease = ARGV[2]\n" + _RELEASE_LEASE

#: KEYS: breaker. ARGV: now, then the outcome as ``_RECORD_FN`` reads it. Returns the state after it.
RECORD = _NOW + _RECORD_FN + "return record(KEYS[1], 2)\n"

#: An attempt ended: RECORD its outcome, then RELEASE its lease — one call instead of two.
#: KEYS: conc[, breaker]. ARGV: now, lease id, then the outcome as ``_RECORD_FN`` reads it.
FINISH = (
    _NOW
    + _RECORD_FN
    + """
local lease = ARGV[2]
if KEYS[2] then record(KEYS[2], 3) end
"""
    + _RELEASE_LEASE
)

#: KEYS: breaker. ARGV: now, cooldown. Returns the state now.
STATE = (
    _NOW
    + """
local b = redis.call('HMGET', KEYS[1], 'state', 'opened_at')
if b[1] ~= 'open' then return 'closed' end
if now < tonumber(b[2]) + tonumber(ARGV[2]) then return 'open' end
return 'half_open'
"""
)

__all__ = ["ADMIT", "EXTEND", "FINISH", "RECORD", "RELEASE", "STATE"]
