"""Pacing as IBKR documents it (CAMPUS #pacing-limitations): 10 requests/s globally, 1 request per
5 s on the slow endpoints, 1/s on ``tickle``; a violation answers 429 ``{"error": ...}`` and puts the
caller in a penalty box (all requests 429) for ``penalty`` seconds (10 minutes per the error-codes
page).

Windows are sliding: at most ``limit`` accepted requests in any ``window`` seconds. Refused requests
do not count. :meth:`Pacing.relaxed` turns everything off for tests that are not about pacing.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Pacing", "Pacer"]

#: (method, path under /v1/api/) → (limit, window seconds); CAMPUS pacing table
ENDPOINT_LIMITS: dict[tuple[str, str], tuple[int, float]] = {
    ("GET", "iserver/account/orders"): (1, 5.0),
    ("GET", "iserver/account/trades"): (1, 5.0),
    ("GET", "iserver/account/pnl/partitioned"): (1, 5.0),
    ("GET", "portfolio/accounts"): (1, 5.0),
    ("GET", "portfolio/subaccounts"): (1, 5.0),
    ("GET", "tickle"): (1, 1.0),
    ("POST", "tickle"): (1, 1.0),
    ("GET", "iserver/marketdata/snapshot"): (10, 1.0),
}


@dataclass(slots=True)
class Pacing:
    """Pacing settings; the defaults are the documented ones."""

    enabled: bool = True
    global_limit: int = 10
    global_window: float = 1.0
    slow_window: float = 5.0
    penalty: float = 600.0

    @classmethod
    def relaxed(cls) -> Pacing:
        return cls(enabled=False, penalty=0.0)


@dataclass(slots=True)
class Pacer:
    """Sliding-window counters for one venue."""

    pacing: Pacing = field(default_factory=Pacing)
    _global: deque[float] = field(default_factory=deque)
    _endpoints: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    penalty_until: float = 0.0
    violations: int = 0

    def reset(self) -> None:
        self._global.clear()
        self._endpoints.clear()
        self.penalty_until = 0.0

    def check(self, method: str, path: str) -> str | None:
        """``None`` when the request may pass (and is counted), else the 429 reason."""
        if not self.pacing.enabled:
            return None
        now = time.monotonic()
        if now < self.penalty_until:
            return "Too many requests: penalty box"
        while self._global and self._global[0] <= now - self.pacing.global_window:
            self._global.popleft()
        if len(self._global) >= self.pacing.global_limit:
            self.violations += 1
            self.penalty_until = now + self.pacing.penalty
            return "Too many requests"
        limit = ENDPOINT_LIMITS.get((method, path))
        if limit is not None:
            count, window = limit
            if window == 5.0:
                window = self.pacing.slow_window
            hits = self._endpoints.setdefault((method, path), deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= count:
                self.violations += 1
                return f"Too many requests: {method} /{path} allows {count} per {window:g} s"
            hits.append(now)
        self._global.append(now)
        return None
