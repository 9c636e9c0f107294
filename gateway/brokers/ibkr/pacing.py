"""Client-side pacing for one IBKR connection, so that the gateway's own traffic never meets a 429.

IBKR documents 10 requests/s globally and 1 request per 5 s on ``GET iserver/account/orders``,
``portfolio/accounts``, ``portfolio/subaccounts``, ``iserver/account/trades`` and the PnL endpoint,
1/s on ``tickle`` (CAMPUS #pacing-limitations). Each limiter is an aiolimiter bucket of size 1, so
calls are spaced at least ``1 / rate`` apart (no bursts), with a safety margin below the documented
figures for clock and network jitter.

Connection options (``ConnectionConfig.options``):

* ``global_rate`` requests/s (default 8; ``0`` = off; ``ConnectionConfig.rate_limit`` if set),
* ``slow_interval`` seconds between calls to a 1-per-5-s endpoint (default 5.5; ``0`` = off),
* ``tickle_interval_min`` seconds between tickles (default 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

__all__ = ["Pacing"]

SLOW_ENDPOINTS = frozenset({
    ("GET", "iserver/account/orders"), ("GET", "iserver/account/trades"), ("GET", "iserver/account/pnl/partitioned"),
    ("GET", "portfolio/accounts"), ("GET", "portfolio/subaccounts"),
})
TICKLE = frozenset({("GET", "tickle"), ("POST", "tickle")})


def _spaced(interval: float) -> AsyncLimiter | None:
    return AsyncLimiter(1, interval) if interval > 0 else None


@dataclass(slots=True)
class Pacing:
    """The limiters of one connection."""

    global_rate: float = 8.0
    slow_interval: float = 5.5
    tickle_interval: float = 1.1
    global_limiter: AsyncLimiter | None = field(init=False, default=None)
    _endpoint: dict[tuple[str, str], AsyncLimiter] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.global_limiter = _spaced(1.0 / self.global_rate) if self.global_rate > 0 else None
        for key in SLOW_ENDPOINTS:
            limiter = _spaced(self.slow_interval)
            if limiter is not None:
                self._endpoint[key] = limiter
        tickle = _spaced(self.tickle_interval)
        if tickle is not None:
            for key in TICKLE:
                self._endpoint[key] = tickle

    def endpoint(self, method: str, path: str) -> AsyncLimiter | None:
        """The per-endpoint limiter for ``method path`` (path relative to ``/v1/api/``), if any."""
        return self._endpoint.get((method.upper(), path.split("?", 1)[0].strip("/")))
