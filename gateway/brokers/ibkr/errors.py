"""IBKR Client Portal error bodies → the gateway's error tree (ibkr.md §13).

IBKR has no single envelope: most errors are ``{"error": "..."}``, order endpoints answer business
rejects with HTTP 200, and the status code alone does not say what happened. So::

    401 / 302 ..................................... AuthenticationError
    403 ........................................... PermissionDenied
    429 ........................................... RateLimitExceeded
    "... doesn't exist", "reply id not found" ...... OrderNotFound
    "Invalid account ID" (500) .................... OrderNotFound
    "No trading permissions" ...................... PermissionDenied
    "insufficient" / "equity" in a reject ......... InsufficientFunds
    other 200 / 400 {"error"} ..................... InvalidOrder
    503, other 5xx ................................ BrokerNotAvailable
"""

from __future__ import annotations

from typing import Any

from ...domain.errors import (
    AuthenticationError,
    BrokerNotAvailable,
    GatewayError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    PermissionDenied,
    RateLimitExceeded,
)
from ..http import HttpResponse

__all__ = ["map_error"]


def _message(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return None


def map_error(response: HttpResponse) -> GatewayError | None:
    """The error an IBKR answer stands for, or ``None`` for a success."""
    status, message = response.status, _message(response.body)
    text = message or f"HTTP {status}"
    kw: dict[str, Any] = {"broker_code": str(status), "broker_message": message}
    if status in (401, 302):
        return AuthenticationError(f"IBKR session not authenticated: {text}", **kw)
    if status == 403:
        return PermissionDenied(f"IBKR refused: {text}", **kw)
    if status == 429:
        return RateLimitExceeded(f"IBKR pacing limit: {text}", **kw)
    if message is None:
        if status >= 400 and status < 500:
            return InvalidOrder(f"IBKR rejected the request: HTTP {status}", **kw)
        return None  # 5xx without a body: HttpClient raises BrokerNotAvailable
    lowered = message.lower()
    if "doesn't exist" in lowered or "reply id not found" in lowered or "invalid account id" in lowered:
        return OrderNotFound(message, **kw)
    if "no trading permissions" in lowered:
        return PermissionDenied(message, **kw)
    if status >= 500:
        return BrokerNotAvailable(f"IBKR answered HTTP {status}: {message}", **kw)
    if "insufficient" in lowered or "equity with loan value" in lowered:
        return InsufficientFunds(message, **kw)
    return InvalidOrder(message, **kw)
