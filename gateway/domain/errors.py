"""The gateway's one exception tree.

::

    GatewayError
    ├── InvalidInput                 the caller's input is wrong; nothing was sent upstream
    ├── InternalError                a bug met while serving one connection (logged; masked for the caller)
    ├── IdempotencyConflict          an idempotency key reused with a different input
    ├── BrokerError                  the broker understood the request and refused it: do not retry
    │   ├── InvalidOrder             the order was rejected (prices, quantity, state, instrument)
    │   │   └── InsufficientFunds    not enough cash or holdings
    │   ├── OrderNotFound            the broker has no such order (or account, instrument)
    │   ├── NotSupported             the broker has no such operation
    │   ├── AuthenticationError      credentials missing, invalid or the session logged out
    │   └── PermissionDenied         the broker forbids the operation for this user
    └── OperationFailed              the call did not complete: a retry may help
        ├── BrokerNotAvailable       connection refused, reset, 5xx, maintenance
        │   ├── RateLimitExceeded    429; ``retry_after`` seconds when the broker says
        │   └── CircuitOpen          the connection kept failing: refused at once, nothing sent
        ├── BrokerBusy               the session's queue, pacing or lock could not serve the call
        │                            before the deadline; nothing was sent; ``retry_after`` seconds
        ├── RequestTimeout           no answer within the configured timeout
        ├── BadResponse              an answer the gateway cannot parse
        └── OrderOutcomeUnknown      an order write whose outcome could not be established

``OperationFailed.sent`` tells whether the request may have reached the broker (``True``: a write's
outcome must be reconciled) or provably did not (``False``: refused before sending, connection
refused, circuit open, no permit before the deadline). Leaves follow ccxt's names. Every error
carries the connection name it came from (``connection``) and, for broker errors, the broker's own
code and message (``broker_code``, ``broker_message``).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadResponse",
    "BrokerBusy",
    "BrokerError",
    "BrokerNotAvailable",
    "CircuitOpen",
    "GatewayError",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InternalError",
    "InvalidInput",
    "InvalidOrder",
    "NotSupported",
    "OperationFailed",
    "OrderNotFound",
    "OrderOutcomeUnknown",
    "PermissionDenied",
    "RateLimitExceeded",
    "RequestTimeout",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose.

    Args:
        message: human-readable text, safe to show to the caller (never contains secrets).
        connection: the configured connection name the error belongs to, if any.
        broker_code: the broker's own error code (lemon ``error_code``, Alice Blue ``EC…``, ...).
        broker_message: the broker's own error text.
    """

    code = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        broker_code: str | None = None,
        broker_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connection = connection
        self.broker_code = broker_code
        self.broker_message = broker_message

    def with_connection(self, connection: str) -> GatewayError:
        """Set ``connection`` when it is not yet known and return ``self``."""
        if self.connection is None:
            self.connection = connection
        return self


class InvalidInput(GatewayError):
    """The caller's input is wrong; ``field`` names the input field (dotted path) at fault."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.field = field


class InternalError(GatewayError):
    """Something unexpected (a bug, a payload no parser foresaw) while serving one connection's part;
    the other connections still answer. The message is safe to show; the details are in the log under
    ``request_id``."""

    code = "INTERNAL"

    def __init__(self, message: str, *, request_id: str | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.request_id = request_id


class IdempotencyConflict(GatewayError):
    """An idempotency key was reused with a different input."""

    code = "IDEMPOTENCY_CONFLICT"


class BrokerError(GatewayError):
    """The broker understood the request and refused it; retrying will not help."""

    code = "REJECTED"


class InvalidOrder(BrokerError):
    """The broker rejected the order (price, quantity, state, instrument, limits)."""

    code = "REJECTED"


class InsufficientFunds(InvalidOrder):
    """Not enough cash (buy) or holdings (sell) for the order."""

    code = "INSUFFICIENT_FUNDS"


class OrderNotFound(BrokerError):
    """The broker has no such order, account or instrument."""

    code = "NOT_FOUND"


class NotSupported(BrokerError):
    """The broker (or this adapter) has no such operation."""

    code = "NOT_SUPPORTED"


class AuthenticationError(BrokerError):
    """Credentials are missing or invalid, or the broker session is logged out."""

    code = "UNAUTHENTICATED"


class PermissionDenied(BrokerError):
    """The broker forbids the operation for this user or account."""

    code = "FORBIDDEN"


class OperationFailed(GatewayError):
    """The call did not complete; the same call may succeed later. ``sent``: whether the request may
    have reached the broker (see the module docstring)."""

    code = "BROKER_UNAVAILABLE"
    sent = True


class BrokerNotAvailable(OperationFailed):
    """Connection refused or reset, HTTP 5xx, maintenance."""

    code = "BROKER_UNAVAILABLE"


class RateLimitExceeded(BrokerNotAvailable):
    """The broker answered 429; ``retry_after`` is its ``Retry-After`` in seconds, if given."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BrokerBusy(OperationFailed):
    """The call waited for the broker session (its pacing, its queue or its critical section) until
    the caller's deadline and was **not sent**; ``retry_after`` estimates when it could go."""

    code = "BROKER_BUSY"
    sent = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class CircuitOpen(BrokerNotAvailable):
    """The connection kept failing and its circuit is open: the request was refused at once and
    **not sent**; ``retry_after`` is when a probe may go."""

    sent = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RequestTimeout(OperationFailed):
    """The broker did not answer within the configured timeout."""

    code = "BROKER_UNAVAILABLE"


class BadResponse(OperationFailed):
    """The broker's answer could not be parsed (unexpected shape or value)."""

    code = "BROKER_UNAVAILABLE"


class OrderOutcomeUnknown(OperationFailed):
    """An order write failed in flight and a look-up by client order id found nothing (yet)."""

    code = "OUTCOME_UNKNOWN"

    def __init__(self, message: str, *, client_order_id: str, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.client_order_id = client_order_id
