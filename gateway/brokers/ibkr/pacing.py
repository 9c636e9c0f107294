"""Client-side pacing for one IBKR connection, so that the gateway's own traffic never meets a 429.

IBKR documents 10 requests/s globally and 1 request per 5 s on ``GET iserver/account/orders``,
``portfolio/accounts``, ``portfolio/subaccounts``, ``iserver/account/trades`` and the PnL endpoint,
1/s on ``tickle`` (CAMPUS #pacing-limitations); a violation costs a 10-minute penalty box. The
windows keep a safety margin below the documented figures for clock and network jitter; the
session's scheduler (:mod:`..scheduler`) applies them.

Connection options (``ConnectionConfig.options``):

* ``global_rate`` requests/s (default 8; ``0`` = off; ``ConnectionConfig.rate_limit`` if set) over
  ``global_window`` seconds (default 1): at most ``global_rate × global_window`` in any such window,
* ``slow_interval`` seconds between calls to a 1-per-5-s endpoint (default 5.5; ``0`` = off),
* ``tickle_interval_min`` seconds between tickles (default 1.1).
"""

from __future__ import annotations

from ..pacing import PacingRules, Window

__all__ = ["SLOW_ENDPOINTS", "TICKLE", "ibkr_pacing"]

SLOW_ENDPOINTS = frozenset({
    ("GET", "iserver/account/orders"), ("GET", "iserver/account/trades"), ("GET", "iserver/account/pnl/partitioned"),
    ("GET", "portfolio/accounts"), ("GET", "portfolio/subaccounts"),
})
TICKLE = frozenset({("GET", "tickle"), ("POST", "tickle")})


def ibkr_pacing(global_rate: float = 8.0, slow_interval: float = 5.5, tickle_interval: float = 1.1,
                global_window: float = 1.0) -> PacingRules:
    """The windows of one CP session: at most ``global_rate × global_window`` requests in any
    ``global_window`` seconds, the slow endpoints ``slow_interval`` apart, tickles ``tickle_interval``
    apart (``0`` turns a window off)."""
    endpoints: dict[tuple[str, str], tuple[Window, ...]] = {}
    if slow_interval > 0:
        endpoints.update({key: (Window(1, slow_interval),) for key in SLOW_ENDPOINTS})
    if tickle_interval > 0:
        endpoints.update({key: (Window(1, tickle_interval),) for key in TICKLE})
    global_windows = (Window(max(1, int(global_rate * global_window)), global_window),) if global_rate > 0 else ()
    return PacingRules(global_windows, endpoints)
