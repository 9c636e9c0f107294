"""lemon error envelopes → the gateway's error tree (lemon.md §9).

lemon answers ``{time, mode, status: "error", error_code, error_message}`` on 4xx/5xx; the
``error_code`` decides the class, not the HTTP status.
"""

from __future__ import annotations

from ...domain.errors import (
    AuthenticationError,
    BrokerError,
    BrokerNotAvailable,
    GatewayError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    OrderNotFound,
    PermissionDenied,
    RateLimitExceeded,
)
from ..http import HttpResponse

__all__ = ["map_error"]

_CLASSES: dict[str, type[GatewayError]] = {
    "unauthorized": AuthenticationError,
    "token_invalid": AuthenticationError,
    "rate_limit_exceeded": RateLimitExceeded,
    "internal_error": BrokerNotAvailable,
    "trading_blocked": BrokerNotAvailable,
    "invalid_query": InvalidInput,
    "account_insufficient_funds": InsufficientFunds,
    "insufficient_holdings": InsufficientFunds,
    "order_idempotency_violation": IdempotencyConflict,
    "order_expiration_date_invalid": InvalidOrder,
    "order_total_price_limit_exceeded": InvalidOrder,
    "order_limit_exceeded": InvalidOrder,
    "instrument_not_tradable": InvalidOrder,
    "forbidden_for_venue": InvalidOrder,
    "forbidden_in_current_state": InvalidOrder,
    "order_not_inactive": InvalidOrder,
    "order_not_terminated": InvalidOrder,
    "pin_missing": PermissionDenied,
    "pin_invalid": PermissionDenied,
    "pin_not_set": PermissionDenied,
    "plan_not_allowed": PermissionDenied,
    "trading_disabled": PermissionDenied,
}


def map_error(response: HttpResponse) -> GatewayError | None:
    """The gateway error for a lemon error response, ``None`` for a success."""
    body = response.body if isinstance(response.body, dict) else {}
    if response.status < 400 and body.get("status") != "error":
        return None
    code = str(body.get("error_code") or "")
    message = str(body.get("error_message") or f"HTTP {response.status}")
    if not code:
        if response.status >= 500 or response.status == 429:
            return None  # the HTTP client's generic handling (BrokerNotAvailable / RateLimitExceeded)
        return BrokerError(f"lemon answered HTTP {response.status}: {message}", broker_message=message)
    cls = _CLASSES.get(code)
    if cls is None:
        cls = OrderNotFound if code.endswith("_not_found") else BrokerError
    return cls(f"lemon: {message}", broker_code=code, broker_message=message)
