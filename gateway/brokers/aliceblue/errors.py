"""Alice Blue error bodies → the gateway's error tree.

Alice Blue answers business errors with HTTP 200 and ``{"status": "Not_Ok", "message": "EC…"}``
(a bare code; sometimes a line of prose instead), the login with ``{"stat": "Not_ok", "emsg": …}``
and a bad session with HTTP 401 (``EC087``). The codes fall into::

    EC916 EC920 EC922 EC926           an empty book: not an error (the client answers [])
    EC087, HTTP 401, login emsg       AuthenticationError (EC087 / HTTP401 → re-login and retry once)
    EC086                             PermissionDenied (a read-only user)
    EC868 EC918 EC979 EC992 EC994
    EC997 EC998 EC999 EC815           OrderNotFound
    EC003 EC913 EC915 EC917 EC919
    EC921 EC923 EC924 EC927 EC935
    EC939, prose "Failed to …"        BrokerNotAvailable (the broker failed; a read may be retried)
    any other EC code, other prose    InvalidOrder (validation, state, RMS: the broker refused)
    HTTP 429 / 5xx                    RateLimitExceeded / BrokerNotAvailable

Every error carries ``broker_code`` (the EC code, ``REJECTED`` for an order booked rejected, or
``HTTP401``) and ``broker_message`` (the documented message of the code, or the broker's prose).
"""

from __future__ import annotations

from typing import Any

from ...domain.errors import (
    AuthenticationError,
    BadResponse,
    BrokerError,
    BrokerNotAvailable,
    GatewayError,
    InvalidOrder,
    OrderNotFound,
    PermissionDenied,
    RateLimitExceeded,
)
from ..http import HttpResponse
from .codes import EC_MESSAGES

__all__ = ["EMPTY_CODES", "SESSION_CODES", "error_for_code", "is_empty", "map_error"]

EMPTY_CODES = frozenset({"EC916", "EC920", "EC922", "EC926"})
SESSION_CODES = frozenset({"EC087", "HTTP401"})
_NOT_FOUND = frozenset({"EC815", "EC868", "EC918", "EC979", "EC992", "EC994", "EC997", "EC998", "EC999"})
_UNAVAILABLE = frozenset({"EC003", "EC913", "EC915", "EC917", "EC919", "EC921", "EC923", "EC924", "EC927",
                          "EC935", "EC939"})
_LOGIN_UNAVAILABLE = "internal server error"


def _is_code(text: str) -> bool:
    return len(text) == 5 and text.startswith("EC") and text[2:].isdigit()


def error_for_code(message: str, *, what: str = "Alice Blue refused the request") -> GatewayError:
    """The error for a ``Not_Ok`` ``message``: a bare EC code or a line of prose."""
    text = (message or "").strip()
    if not _is_code(text):
        if text.lower().startswith("failed to"):
            return BrokerNotAvailable(f"Alice Blue failed: {text}", broker_message=text)
        return InvalidOrder(f"{what}: {text}", broker_message=text)
    documented = EC_MESSAGES.get(text, "")
    msg = f"{what}: {text} {documented}".strip()
    cls: type[BrokerError] | type[BrokerNotAvailable]
    if text == "EC087":
        cls = AuthenticationError
    elif text == "EC086":
        cls = PermissionDenied
    elif text in _NOT_FOUND:
        cls = OrderNotFound
    elif text in _UNAVAILABLE:
        cls = BrokerNotAvailable
    else:
        cls = InvalidOrder
    return cls(msg, broker_code=text, broker_message=documented or text)


def is_empty(body: Any) -> bool:
    """True for a ``Not_Ok`` body whose code means "no items" (EC916 / EC920 / EC922 / EC926)."""
    return isinstance(body, dict) and str(body.get("status", "")).lower() != "ok" \
        and str(body.get("message", "")).strip() in EMPTY_CODES


def map_error(response: HttpResponse) -> GatewayError | None:
    """The :data:`~gateway.brokers.http.ErrorMapper` of Alice Blue (see the module docstring)."""
    body = response.body
    if response.status == 429:
        return RateLimitExceeded("Alice Blue rate limit exceeded (1800 requests / 15 minutes)")
    if response.status >= 500:
        code = str(body.get("message", "")) if isinstance(body, dict) else ""
        return BrokerNotAvailable(f"Alice Blue answered HTTP {response.status}",
                                  broker_code=code or None, broker_message=EC_MESSAGES.get(code))
    if response.status == 401:
        code = str(body.get("message", "")) if isinstance(body, dict) else ""
        return AuthenticationError("Alice Blue session is not valid (expired or logged out)",
                                   broker_code=code if _is_code(code) else "HTTP401",
                                   broker_message=EC_MESSAGES.get(code, "Unauthorized"))
    if isinstance(body, dict) and "stat" in body and "status" not in body:
        if str(body["stat"]).lower() == "ok":
            return None
        emsg = str(body.get("emsg", ""))
        if _LOGIN_UNAVAILABLE in emsg.lower():
            return BrokerNotAvailable(f"Alice Blue login failed: {emsg}", broker_message=emsg)
        return AuthenticationError(f"Alice Blue login failed: {emsg}", broker_message=emsg)
    if isinstance(body, dict) and "status" in body:
        if str(body["status"]).lower() == "ok" or is_empty(body):
            return None
        return error_for_code(str(body.get("message", "")))
    if response.status >= 400:
        return BadResponse(f"Alice Blue answered HTTP {response.status} without an Alice Blue body")
    return None
