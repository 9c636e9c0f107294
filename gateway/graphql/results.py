"""Mutation outcomes: success payloads and the mapping of domain errors onto UserError members."""

from __future__ import annotations

import math
from typing import Annotated

import strawberry

from ..domain import errors as e
from .common import BrokerUnavailable, InvalidInput, NotFound, NotSupported, OrderOutcomeUnknown, OrderRejected
from .enums import ErrorCodeEnum
from .order.types import Order
from .position.types import Position

__all__ = ["CancelOrderResult", "ConfirmationDeclined", "ConfirmationRequired", "ConvertPositionResult",
           "ModifyOrderResult", "OrderCancelRequested", "OrderModified", "OrderPlaced", "PlaceOrderResult",
           "PositionConverted", "to_user_error"]


@strawberry.type(description="The order exists at the broker.")
class OrderPlaced:
    order: Order = strawberry.field(description="The order as the broker reports it right after placement.")


@strawberry.type(description="The broker asks questions (IBKR replies) or a PIN (lemon) before the order exists.")
class ConfirmationRequired:
    confirmation_id: strawberry.ID = strawberry.field(description="Pass it to `confirmOrder`.")
    messages: list[str] = strawberry.field(description="The broker's questions or warnings, verbatim.")
    message_ids: list[str] = strawberry.field(description="The broker's ids of those messages (o163, p6, ...).")


@strawberry.type(description="The confirmation was declined; nothing was placed.")
class ConfirmationDeclined:
    confirmation_id: strawberry.ID = strawberry.field(description="The declined confirmation.")
    message: str = strawberry.field(description="What happened.")


@strawberry.type(description="The cancel request was accepted; the order may still be PENDING_CANCEL.")
class OrderCancelRequested:
    order: Order = strawberry.field(description="The order right after the cancel request.")


@strawberry.type(description="The order was modified.")
class OrderModified:
    order: Order = strawberry.field(description="The order after the change.")


@strawberry.type(description="The position was converted to another product.")
class PositionConverted:
    position: Position = strawberry.field(description="The position after conversion.")


PlaceOrderResult = Annotated[
    OrderPlaced | ConfirmationRequired | ConfirmationDeclined | InvalidInput | NotFound | NotSupported
    | OrderRejected | OrderOutcomeUnknown | BrokerUnavailable,
    strawberry.union("PlaceOrderResult", description="Outcome of placing, confirming or squaring off."),
]
CancelOrderResult = Annotated[
    OrderCancelRequested | InvalidInput | NotFound | NotSupported | OrderRejected | BrokerUnavailable,
    strawberry.union("CancelOrderResult", description="Outcome of a cancel request."),
]
ModifyOrderResult = Annotated[
    OrderModified | ConfirmationRequired | InvalidInput | NotFound | NotSupported | OrderRejected | BrokerUnavailable,
    strawberry.union("ModifyOrderResult", description="Outcome of a modify request."),
]
ConvertPositionResult = Annotated[
    PositionConverted | InvalidInput | NotFound | NotSupported | OrderRejected | BrokerUnavailable,
    strawberry.union("ConvertPositionResult", description="Outcome of a position conversion."),
]


def to_user_error(exc: e.GatewayError, *, outcome_unknown: bool = True
                  ) -> InvalidInput | NotFound | NotSupported | OrderRejected | OrderOutcomeUnknown | BrokerUnavailable:
    """The UserError member for a domain error (``outcome_unknown=False`` where the union lacks it)."""
    msg = exc.message
    if isinstance(exc, e.InvalidInput):
        return InvalidInput(code=ErrorCodeEnum.INVALID_INPUT, message=msg, field=exc.field)
    if isinstance(exc, e.IdempotencyConflict):
        return InvalidInput(code=ErrorCodeEnum.IDEMPOTENCY_CONFLICT, message=msg, field="idempotencyKey")
    if isinstance(exc, e.OrderNotFound):
        return NotFound(code=ErrorCodeEnum.NOT_FOUND, message=msg)
    if isinstance(exc, e.NotSupported):
        return NotSupported(code=ErrorCodeEnum.NOT_SUPPORTED, message=msg)
    if isinstance(exc, e.AuthenticationError):
        return BrokerUnavailable(code=ErrorCodeEnum.UNAUTHENTICATED, message=msg, retry_after_seconds=None)
    if isinstance(exc, e.BrokerError):
        code = (ErrorCodeEnum.INSUFFICIENT_FUNDS if isinstance(exc, e.InsufficientFunds)
                else ErrorCodeEnum.FORBIDDEN if isinstance(exc, e.PermissionDenied) else ErrorCodeEnum.REJECTED)
        return OrderRejected(code=code, message=msg, broker_code=exc.broker_code, broker_message=exc.broker_message)
    if isinstance(exc, e.OrderOutcomeUnknown) and outcome_unknown:
        return OrderOutcomeUnknown(code=ErrorCodeEnum.OUTCOME_UNKNOWN, message=msg, client_order_id=exc.client_order_id)
    if isinstance(exc, e.RateLimitExceeded | e.BrokerBusy):
        retry = math.ceil(exc.retry_after) if exc.retry_after is not None else None
        code = ErrorCodeEnum.RATE_LIMITED if isinstance(exc, e.RateLimitExceeded) else ErrorCodeEnum.BROKER_BUSY
        return BrokerUnavailable(code=code, message=msg, retry_after_seconds=retry)
    retry_after = math.ceil(exc.retry_after) if isinstance(exc, e.CircuitOpen) and exc.retry_after else None
    return BrokerUnavailable(code=ErrorCodeEnum.BROKER_UNAVAILABLE, message=msg, retry_after_seconds=retry_after)
