"""Position mutations: squareOffPosition, convertPosition."""

from __future__ import annotations

from typing import Any

import strawberry

from ...brokers import budget
from ...brokers.base import PlaceOutcome
from ...domain.enums import OrderType, Product
from ...domain.errors import GatewayError, InvalidInput, NotSupported, OrderNotFound
from ...domain.keys import PositionKey
from ..context import Info
from ..enums import OrderTypeEnum, ProductEnum
from ..ids import require
from ..order.mutations import outcome_result, place
from ..order.validation import check_prices, check_quantity, check_text
from ..queries import find_position
from ..results import ConvertPositionResult, PlaceOrderResult, PositionConverted, to_user_error
from ..scalars import Decimal
from .types import Position

__all__ = ["PositionMutations"]


@strawberry.input(description="Close all or part of a position.")
class SquareOffPositionInput:
    position_id: strawberry.ID = strawberry.field(description="The position.")
    quantity: Decimal | None = strawberry.field(default=None, description="How much to close; all of it if null.")
    type: OrderTypeEnum = strawberry.field(default=OrderTypeEnum.MARKET, description="MARKET or LIMIT.")
    limit_price: Decimal | None = strawberry.field(default=None, description="Limit price for a LIMIT square-off.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Same key + same input = the same result, never a second order.")


@strawberry.input(description="Move a position to another product (Alice Blue INTRADAY ⇄ LONGTERM).")
class ConvertPositionInput:
    position_id: strawberry.ID = strawberry.field(description="The position.")
    to_product: ProductEnum = strawberry.field(description="The product to convert to.")
    quantity: Decimal | None = strawberry.field(default=None, description="How much to convert; all of it if null.")


def _key(info: Info, position_id: str) -> PositionKey:
    return require(position_id, PositionKey, info.context.principal, info.context.registry.adapters, "positionId")


async def _position(info: Info, key: PositionKey) -> object:
    position = await find_position(info, key)
    if position is None:
        raise OrderNotFound("no such position")
    return position


@strawberry.type(description="Position mutations.")
class PositionMutations:
    @strawberry.mutation(description="Close a position: the broker's own square-off where it has one (Alice Blue), "
                                     "else the opposite order for the quantity.")
    async def square_off_position(self, info: Info, input: SquareOffPositionInput) -> PlaceOrderResult:
        ctx = info.context
        try:
            key = _key(info, input.position_id)
            position = await _position(info, key)
            adapter = ctx.registry.get(key.connection)
            held = abs(position.quantity)  # type: ignore[attr-defined]
            if held == 0:
                raise InvalidInput("the position is flat: nothing to square off", field="positionId")
            quantity = held if input.quantity is None else input.quantity
            check_quantity(quantity, adapter.capabilities)
            if quantity > held:
                raise InvalidInput(f"quantity exceeds the position's {held}", field="quantity")
            order_type = OrderType(input.type.value)
            if order_type not in (OrderType.MARKET, OrderType.LIMIT):
                raise InvalidInput("a square-off is MARKET or LIMIT", field="type")
            check_prices(order_type, input.limit_price, None)
            check_text(input.idempotency_key, "idempotencyKey", 128)

            async def build(cid: str) -> PlaceOutcome:
                return await adapter.square_off_position(position, quantity, order_type,  # type: ignore[arg-type]
                                                         input.limit_price, cid)

            payload = {"position": input.position_id, "quantity": str(quantity), "type": order_type.value,
                       "limit": str(input.limit_price)}
            async def lookup(cid: str) -> Any:
                with budget.fresh():
                    return await adapter.fetch_order_by_client_id(position.account_key, cid)  # type: ignore[attr-defined]

            outcome = await place(ctx, adapter, "squareOffPosition", build, payload, input.idempotency_key, lookup)
            await ctx.published(outcome)
            return outcome_result(outcome)
        except GatewayError as exc:
            return to_user_error(exc)

    @strawberry.mutation(description="Convert a position to another product (Alice Blue conversion).")
    async def convert_position(self, info: Info, input: ConvertPositionInput) -> ConvertPositionResult:
        ctx = info.context
        try:
            key = _key(info, input.position_id)
            adapter = ctx.registry.get(key.connection)
            if not adapter.capabilities.convert_position:  # refused before anything is read upstream
                raise NotSupported(f"{adapter.broker.name} has no position conversion", connection=key.connection)
            position = await _position(info, key)
            held = abs(position.quantity)  # type: ignore[attr-defined]
            quantity = held if input.quantity is None else input.quantity
            check_quantity(quantity, adapter.capabilities)
            if quantity > held:
                raise InvalidInput(f"quantity exceeds the position's {held}", field="quantity")
            converted = await adapter.convert_position(position, Product(input.to_product.value),  # type: ignore[arg-type]
                                                       quantity)
            return PositionConverted(position=Position.from_domain(converted))
        except GatewayError as exc:
            return to_user_error(exc, outcome_unknown=False)  # type: ignore[return-value]
