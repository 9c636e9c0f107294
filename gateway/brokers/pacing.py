"""Client-side pacing of one broker session: sliding windows ("at most ``limit`` requests in any
``seconds``"), the way brokers state their limits (IBKR: 10 requests/s in all, 1 per 5 s on the slow
endpoints; lemon: requests per minute; Alice Blue: 1 800 per 15 minutes).

A call is admitted against the connection's global windows and, for an endpoint with its own pacing,
the endpoint's windows, all at once (:meth:`MemoryWindows.try_admit`). What is admitted is a list of
tickets. A ``pending`` ticket occupies the windows from its admission until it is *stamped* (the
scheduler stamps a ticket with the time its request's answer arrived), and then for the window's
length from that time; so a call admitted early and sent later, or delayed on its way, never lets
others through too soon. A ticket not used after all (a switch that turned out not to be needed) is
*released*.

Two stores with the same interface: :class:`MemoryWindows` (one process) and :class:`RedisWindows`
(one Lua script per admission on sorted sets, with Redis' own clock, so that several replicas on one
broker login share its pacing). The admission order, the deadlines and the priorities are the
scheduler's (:mod:`.scheduler`); this module only counts.

Why not a rate-limit library: the windows must be sub-second in tests, admit several calls
atomically, return unused tickets and be re-stamped at send time; aiolimiter's leaky bucket and
``limits``' whole-second windows do none of those.
"""

from __future__ import annotations

import bisect
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GLOBAL", "Admission", "MemoryWindows", "PacingRules", "RedisWindows", "Ticket", "Window"]

GLOBAL = "global"
_PENDING_POLL = 0.02  #: how soon to look again when a window is full of tickets not yet sent
#: a pending ticket counts as sent this far in the future until stamped or released, so that one never
#: stamped (its holder died) frees its window after a while instead of holding it for ever
PENDING_HOLD = 60.0


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any ``seconds``."""

    limit: int
    seconds: float


@dataclass(frozen=True, slots=True)
class PacingRules:
    """A connection's windows: ``global_windows`` for every request, ``endpoints`` for
    ``(METHOD, path relative to the base URL)`` with their own pacing (matched without the query)."""

    global_windows: tuple[Window, ...] = ()
    endpoints: Mapping[tuple[str, str], tuple[Window, ...]] = field(default_factory=dict)

    @classmethod
    def from_rate(cls, rate: float | None, burst: int | None = None) -> PacingRules:
        """``rate`` requests per second on average with bursts of ``burst`` (default: one second's
        worth): at most ``burst`` in any ``burst / rate`` seconds. ``None`` or ``0`` = unpaced."""
        if not rate:
            return cls()
        burst = burst or max(1, round(rate))
        return cls((Window(burst, burst / rate),))

    def bucket(self, method: str, path: str) -> str | None:
        """The endpoint bucket of ``method path``, or ``None`` when it has no pacing of its own."""
        key = (method.upper(), path.split("?", 1)[0].strip("/"))
        return f"{key[0]} {key[1]}" if key in self.endpoints else None

    def windows(self, bucket: str) -> tuple[Window, ...]:
        if bucket == GLOBAL:
            return self.global_windows
        method, _, path = bucket.partition(" ")
        return self.endpoints.get((method, path), ())

    def demand(self, calls: list[tuple[str, str]]) -> dict[str, int]:
        """How many tickets of each bucket ``calls`` need (the global bucket once per call)."""
        out: dict[str, int] = {}
        for method, path in calls:
            if self.global_windows:
                out[GLOBAL] = out.get(GLOBAL, 0) + 1
            own = self.bucket(method, path)
            if own is not None:
                out[own] = out.get(own, 0) + 1
        return out


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request in one bucket."""

    bucket: str
    id: str


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of ``try_admit``: ``tickets`` when admitted, else ``wait`` seconds until the
    ``blocked`` bucket could take the demand."""

    tickets: tuple[Ticket, ...] | None
    wait: float = 0.0
    blocked: str | None = None

    @property
    def admitted(self) -> bool:
        return self.tickets is not None


class MemoryWindows:
    """Sliding-window logs in this process: per bucket a sorted list of (time, id)."""

    #: ``stamp`` never suspends: the scheduler awaits it directly, not through a shielded task
    stamps_at_once = True

    def __init__(self, rules: PacingRules, clock: Any = time.monotonic) -> None:
        self.rules = rules
        self.clock = clock
        self._logs: dict[str, list[tuple[float, str]]] = {}
        self._ids = itertools.count()

    def _log(self, bucket: str, now: float) -> list[tuple[float, str]]:
        log = self._logs.setdefault(bucket, [])
        horizon = max((w.seconds for w in self.rules.windows(bucket)), default=0.0)
        cut = bisect.bisect_right(log, (now - horizon, "\uffff"))
        if cut:
            del log[:cut]
        return log

    def _wait(self, bucket: str, need: int, now: float) -> float:
        log = self._log(bucket, now)
        wait = 0.0
        for window in self.rules.windows(bucket):
            if need > window.limit:
                return float("inf")
            first = bisect.bisect_right(log, (now - window.seconds, "\uffff"))
            count = len(log) - first
            if count + need > window.limit:
                oldest = log[first + count + need - window.limit - 1][0]
                wait = max(wait, oldest + window.seconds - now if oldest <= now else _PENDING_POLL)
        return wait

    async def try_admit(self, demand: Mapping[str, int], pending: bool = False) -> Admission:
        """Admit ``demand`` (bucket → requests) now, or say how long the first full bucket needs.
        ``pending`` tickets count as not yet sent until :meth:`stamp`."""
        now = self.clock()
        for bucket in sorted(demand, key=lambda b: b != GLOBAL):  # global first: it stops the scan
            wait = self._wait(bucket, demand[bucket], now)
            if wait > 0:
                return Admission(None, wait, bucket)
        tickets = []
        at = now + PENDING_HOLD if pending else now
        for bucket, need in demand.items():
            log = self._logs.setdefault(bucket, [])
            for _ in range(need):
                ticket = Ticket(bucket, str(next(self._ids)))
                bisect.insort(log, (at, ticket.id))
                tickets.append(ticket)
        return Admission(tuple(tickets))

    async def stamp(self, tickets: tuple[Ticket, ...]) -> None:
        """The tickets' requests leave now: move them to now (never earlier than admitted)."""
        now = self.clock()
        for ticket in tickets:
            log = self._logs.get(ticket.bucket)
            if not log:
                continue
            for i, (_, tid) in enumerate(log):
                if tid == ticket.id:
                    del log[i]
                    bisect.insort(log, (now, tid))
                    break

    async def release(self, tickets: tuple[Ticket, ...]) -> None:
        """Give unused tickets back."""
        for ticket in tickets:
            log = self._logs.get(ticket.bucket)
            if not log:
                continue
            for i, (_, tid) in enumerate(log):
                if tid == ticket.id:
                    del log[i]
                    break


_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nb = tonumber(ARGV[1])
local pos = 2
local specs = {}
for b = 1, nb do
  local need = tonumber(ARGV[pos]); local nw = tonumber(ARGV[pos + 1]); pos = pos + 2
  local windows = {}
  local horizon = 0
  for w = 1, nw do
    local limit = tonumber(ARGV[pos]); local span = tonumber(ARGV[pos + 1]); pos = pos + 2
    windows[w] = {limit, span}
    if span > horizon then horizon = span end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[b], '-inf', '(' .. (now - horizon))
  for w = 1, nw do
    local limit = windows[w][1]; local span = windows[w][2]
    if need > limit then return {0, -1, b} end
    local inside = redis.call('ZRANGEBYSCORE', KEYS[b], '(' .. (now - span), '+inf', 'WITHSCORES')
    local count = #inside / 2
    if count + need > limit then
      local k = count + need - limit
      local oldest = tonumber(inside[2 * k])
      if oldest > now then return {0, 20, b} end
      return {0, oldest + span - now, b}
    end
  end
  specs[b] = {need, horizon}
end
local prefix = ARGV[pos]
local at = now
if ARGV[pos + 1] == '1' then at = now + 60000 end
local seq = redis.call('INCRBY', KEYS[nb + 1], 1)
local out = {1}
for b = 1, nb do
  for i = 1, specs[b][1] do
    local id = prefix .. ':' .. seq .. ':' .. b .. ':' .. i
    redis.call('ZADD', KEYS[b], at, id)
    table.insert(out, id)
  end
  redis.call('PEXPIRE', KEYS[b], math.ceil(specs[b][2]) + 1000)
end
return out
"""

_STAMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', now, ARGV[i]) end
return 1
"""


class RedisWindows:
    """The same windows in Redis (shared by every replica on the session ``name``)."""

    def __init__(self, rules: PacingRules, redis: Any, name: str, prefix: str = "gateway:pacing:") -> None:
        self.rules = rules
        self.redis = redis
        self.base = f"{prefix}{name}:"
        self.owner = uuid.uuid4().hex[:12]
        self._admit = redis.register_script(_ADMIT)
        self._stamp = redis.register_script(_STAMP)

    def _key(self, bucket: str) -> str:
        return self.base + bucket

    async def try_admit(self, demand: Mapping[str, int], pending: bool = False) -> Admission:
        buckets = sorted(demand, key=lambda b: b != GLOBAL)
        args: list[Any] = [len(buckets)]
        for bucket in buckets:
            windows = self.rules.windows(bucket)
            args += [demand[bucket], len(windows)]
            for w in windows:
                args += [w.limit, int(w.seconds * 1000)]
        args += [self.owner, "1" if pending else "0"]
        keys = [self._key(b) for b in buckets] + [self.base + "seq"]
        result = await self._admit(keys=keys, args=args)
        if int(result[0]) == 0:
            wait = float(result[1])
            return Admission(None, float("inf") if wait < 0 else wait / 1000.0, buckets[int(result[2]) - 1])
        ids = [r.decode() if isinstance(r, bytes) else str(r) for r in result[1:]]
        tickets = []
        i = 0
        for bucket in buckets:
            for _ in range(demand[bucket]):
                tickets.append(Ticket(bucket, ids[i]))
                i += 1
        return Admission(tuple(tickets))

    async def stamp(self, tickets: tuple[Ticket, ...]) -> None:
        if tickets:
            await self._stamp(keys=[self._key(t.bucket) for t in tickets], args=[t.id for t in tickets])

    async def release(self, tickets: tuple[Ticket, ...]) -> None:
        if tickets:
            async with self.redis.pipeline(transaction=False) as pipe:
                for t in tickets:
                    pipe.zrem(self._key(t.bucket), t.id)
                await pipe.execute()
