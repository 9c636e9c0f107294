"""ETNA error bodies → the gateway's error tree.

ETNA has no single error envelope; the shape depends on the layer that answers::

    403  {"error": "Application key is not defined or does not exist"}      → AuthenticationError
    401  {"Message": "Authorization has been denied for this request."}    → AuthenticationError (code Unauthorized)
    401  {"State": "Failed", "Step": …, "Reason": …}   (POST token)        → AuthenticationError (code = Step)
    422  {"Message": "Validation error occured …", "ModelState": {…}}      → InvalidOrder (code ValidationError)
    409  {"Message": …} or no body (replace / cancel not possible)         → InvalidOrder (code Conflict)
    404  {"Message": …}                                                    → OrderNotFound
    400  {"Message": …} or no body (invalid filter, bad parameter)         → BrokerError (code BadRequest)
    429  any                                                               → RateLimitExceeded
    5xx  {"message": …, "error": "Unexpected server error"}                → BrokerNotAvailable
"""

from __future__ import annotations

from typing import Any

from ...domain.errors import (
    AuthenticationError,
    BrokerError,
    BrokerNotAvailable,
    GatewayError,
    InvalidOrder,
    OrderNotFound,
    PermissionDenied,
    RateLimitExceeded,
)
from ..http import HttpResponse

__all__ = ["UNAUTHORIZED", "broker_message", "map_error"]

#: ``broker_code`` of a 401 that a fresh token may cure
UNAUTHORIZED = "Unauthorized"


def broker_message(body: Any) -> str | None:
    """The human text of any ETNA error body (``Message`` + ``ModelState``, ``Reason``, ``error``)."""
    if not isinstance(body, dict):
        return None
    if "ModelState" in body and isinstance(body["ModelState"], dict):
        details = "; ".join(
            f"{field}: {' '.join(str(m) for m in messages) if isinstance(messages, list) else messages}"
            for field, messages in body["ModelState"].items()
        )
        return f"{body.get('Message', '')} ({details})" if details else str(body.get("Message", ""))
    for key in ("Message", "Reason", "message", "error"):
        if isinstance(body.get(key), str):
            text = str(body[key])
            if key == "message" and isinstance(body.get("error"), str):
                text = f"{text}: {body['error']}"
            return text
    if isinstance(body.get("Errors"), list):
        return "; ".join(str(e) for e in body["Errors"])
    return None


def map_error(response: HttpResponse) -> GatewayError | None:
    """The error for an ETNA answer, or ``None`` for a success (2xx)."""
    status, body = response.status, response.body
    if status < 400:
        return None
    text = broker_message(body)
    where = f"ETNA answered HTTP {status}"
    kw: dict[str, str | None] = {"broker_message": text}
    if status == 401:
        if isinstance(body, dict) and body.get("State") == "Failed":
            return AuthenticationError(f"ETNA login failed: {body.get('Reason')}", broker_code=str(body.get("Step")),
                                       **kw)
        return AuthenticationError(f"{where}: {text or 'unauthorized'}", broker_code=UNAUTHORIZED, **kw)
    if status == 403:
        if isinstance(body, dict) and "error" in body:
            return AuthenticationError(f"{where}: {text}", broker_code="ApplicationKey", **kw)
        return PermissionDenied(f"{where}: {text or 'forbidden'}", broker_code="Forbidden", **kw)
    if status == 422:
        return InvalidOrder(f"ETNA rejected the request: {text}", broker_code="ValidationError", **kw)
    if status == 409:
        return InvalidOrder(f"ETNA refused: {text or 'conflict'}", broker_code="Conflict", **kw)
    if status == 404:
        return OrderNotFound(f"{where}: {text or 'not found'}", broker_code="NotFound", **kw)
    if status == 429:
        return RateLimitExceeded(f"{where}: {text or 'rate limited'}", broker_code="TooManyRequests", **kw)
    if status >= 500:
        return BrokerNotAvailable(f"{where}: {text or 'server error'}", broker_code=str(status), **kw)
    return BrokerError(f"{where}: {text or 'bad request'}", broker_code="BadRequest", **kw)
