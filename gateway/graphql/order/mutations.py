"""Order mutations: placeOrder, confirmOrder, cancelOrder, modifyOrder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

import strawberry

from ...brokers.base import BaseAdapter, Confirmation, PlaceOutcome
from ...brokers.placement import find_placed
from ...domain.enums import OrderSide, OrderType, Product, TimeInForce
from ...domain.errors import GatewayError, InvalidInput, NotSupported, OperationFailed, OrderOutcomeUnknown
from ...domain.keys import AccountKey, AllocationGroupKey, ConfirmationKey, OrderKey
from ...domain.models import Order as DomainOrder
from ...domain.requests import InstrumentRef, OrderRequest, OrderUpdate
from ...idempotency import client_order_id, fingerprint
from ..context import Context, Info
from ..enums import OrderSideEnum, OrderTypeEnum, ProductEnum, TimeInForceEnum
from ..ids import encode, require
from ..results import (
    CancelOrderResult,
    ConfirmationDeclined,
    ConfirmationRequired,
    ModifyOrderResult,
    OrderCancelRequested,
    OrderModified,
    OrderPlaced,
    PlaceOrderResult,
    to_user_error,
)
from ..scalars import Decimal
from .types import Order
from .validation import check_expiry, check_instrument, check_prices, check_quantity, check_text

__all__ = ["NOTHING_SENT", "NO_ORDER_YET", "Lookup", "OrderMutations", "place"]

#: added to a failure before sending, after an earlier attempt with the key, when the broker was asked
NO_ORDER_YET = "the broker holds no order with this idempotencyKey"
#: how an ``OrderOutcomeUnknown`` says that this attempt sent nothing (the broker's orders could not be read)
NOTHING_SENT = "nothing was sent"

#: (client order id) → the order it placed, or ``None``
Lookup = Callable[[str], Awaitable["DomainOrder | None"]]


@strawberry.input(description="How the caller names an instrument; give at least one of the ids.")
class InstrumentInput:
    isin: str | None = strawberry.field(default=None, description="ISIN (check digit verified).")
    symbol: str | None = strawberry.field(default=None, description="Trading symbol.")
    exchange: str | None = strawberry.field(default=None, description="MIC or the broker's venue code (NSE, BSE).")
    broker_instrument_id: str | None = strawberry.field(
        default=None, description="The broker's instrument id (IBKR conid, ETNA SecurityId, Alice Blue instrumentId).")


@strawberry.input(description="A new order for exactly one of an account or an allocation group.")
class PlaceOrderInput:
    account_id: strawberry.ID | None = strawberry.field(default=None, description="The account to trade in.")
    allocation_group_id: strawberry.ID | None = strawberry.field(
        default=None, description="The allocation group to trade for (IBKR Financial Advisor).")
    instrument: InstrumentInput = strawberry.field(description="The instrument.")
    side: OrderSideEnum = strawberry.field(description="Buy or sell.")
    type: OrderTypeEnum = strawberry.field(description="Order type.")
    quantity: Decimal = strawberry.field(description="Quantity, greater than 0.")
    limit_price: Decimal | None = strawberry.field(default=None, description="Limit price (LIMIT, STOP_LIMIT).")
    stop_price: Decimal | None = strawberry.field(default=None, description="Stop price (STOP, STOP_LIMIT).")
    time_in_force: TimeInForceEnum = strawberry.field(default=TimeInForceEnum.DAY, description="Time in force.")
    expires_at: datetime | None = strawberry.field(default=None, description="Expiry (makes the order GTD).")
    product: ProductEnum | None = strawberry.field(
        default=None, description="Broker product (Alice Blue INTRADAY / LONGTERM / MTF); the broker's default if null.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Same key + same input = the same result, never a second order (24 h).")
    notes: str | None = strawberry.field(default=None, description="Free-text notes (at most 256 characters).")


@strawberry.input(description="The answer to a ConfirmationRequired.")
class ConfirmOrderInput:
    confirmation_id: strawberry.ID = strawberry.field(description="From ConfirmationRequired.")
    accept: bool = strawberry.field(description="true to go ahead, false to drop the order.")
    pin: str | None = strawberry.field(default=None, description="The PIN, where the broker asks for one (lemon).")


@strawberry.input(description="Which order to cancel.")
class CancelOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order.")


@strawberry.input(description="Changes to a working order; omitted fields stay as they are.")
class ModifyOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order.")
    quantity: Decimal | None = strawberry.field(default=None, description="New total quantity.")
    limit_price: Decimal | None = strawberry.field(default=None, description="New limit price.")
    stop_price: Decimal | None = strawberry.field(default=None, description="New stop price.")
    time_in_force: TimeInForceEnum | None = strawberry.field(default=None, description="New time in force.")
    expires_at: datetime | None = strawberry.field(default=None, description="New expiry.")


def outcome_result(outcome: PlaceOutcome) -> OrderPlaced | ConfirmationRequired:
    if isinstance(outcome, Confirmation):
        return ConfirmationRequired(confirmation_id=strawberry.ID(encode(outcome.key)),
                                    messages=list(outcome.messages), message_ids=list(outcome.message_ids))
    return OrderPlaced(order=Order.from_domain(outcome))


async def place(ctx: Context, adapter: BaseAdapter, kind: str, build: object, payload: dict[str, object],
                idempotency_key: str | None, lookup: Lookup | None = None) -> PlaceOutcome:
    """Place through ``adapter`` with the idempotency rules of ``gateway.idempotency`` and the
    placement protocol of ``gateway.brokers.placement`` (``docs/placement.md``).

    ``build(client_order_id)`` makes the adapter call's coroutine; ``payload`` is what makes two
    requests "the same input"; ``lookup(client_order_id)`` finds the order a client order id placed
    (``None`` when there is none). With a key:

    * an earlier placement's order (this replica's or, with Redis, any replica's) is answered again;
    * on a broker that does not refuse a repeated client order id itself (``unique_client_ids``
      false: ETNA, Alice Blue) the id is looked up first, so a restarted gateway or another replica
      never sends it twice; a look-up that fails answers ``OrderOutcomeUnknown`` and sends nothing;
    * after an earlier attempt whose outcome was not established, a failure before sending is checked
      against the broker: the order found, else the failure.
    """
    scope = f"{ctx.principal.name}\x00{adapter.connection}\x00{kind}"
    cid = client_order_id(scope, idempotency_key)
    if idempotency_key is None:
        return await build(cid)  # type: ignore[operator]
    async with ctx.idempotency.claim(scope, idempotency_key, fingerprint(payload), cid) as claim:
        if isinstance(claim.result, OrderKey):
            return await adapter.fetch_order(claim.result)
        if lookup is not None and not adapter.unique_client_ids:
            found, complete = await find_placed(lambda: lookup(cid), visibility=adapter.visibility, what=cid,
                                                first_answer=True)
            if found is not None:
                claim.record(found.key)
                return found
            if not complete:
                raise OrderOutcomeUnknown("the broker's orders could not be read to check whether this "
                                          f"idempotencyKey placed an order already; {NOTHING_SENT}",
                                          client_order_id=cid, connection=adapter.connection)
        await claim.begin()
        try:
            outcome: PlaceOutcome = await build(cid)  # type: ignore[operator]
        except OrderOutcomeUnknown:
            raise
        except OperationFailed as exc:
            if not claim.attempted or lookup is None:
                raise  # nothing sent now, and no earlier attempt
            if not adapter.unique_client_ids:  # looked up just before sending: none
                exc.message += f"; {NO_ORDER_YET}"
                raise
            found, complete = await find_placed(lambda: lookup(cid), visibility=adapter.visibility, what=cid)
            if found is not None:
                claim.record(found.key)
                return found
            if complete:
                exc.message += f"; {NO_ORDER_YET}"
                raise
            raise OrderOutcomeUnknown("an earlier request with this idempotencyKey may have placed the order and "
                                      "the broker's orders could not be read", client_order_id=cid,
                                      connection=adapter.connection) from None
        if not isinstance(outcome, Confirmation):
            claim.record(outcome.key)
        return outcome


def _request(ctx: Context, input: PlaceOrderInput) -> tuple[BaseAdapter, OrderRequest]:
    if (input.account_id is None) == (input.allocation_group_id is None):
        raise InvalidInput("give exactly one of accountId and allocationGroupId", field="accountId")
    account = group = None
    if input.account_id is not None:
        account = require(input.account_id, AccountKey, ctx.principal, ctx.registry.adapters, "accountId")
        connection = account.connection
    else:
        group = require(str(input.allocation_group_id), AllocationGroupKey, ctx.principal, ctx.registry.adapters,
                        "allocationGroupId")
        connection = group.connection
    adapter = ctx.registry.get(connection)
    caps = adapter.capabilities
    if group is not None and not caps.allocation_groups:
        raise NotSupported(f"{adapter.broker.name} has no allocation groups", connection=connection)
    order_type = OrderType(input.type.value)
    if order_type not in caps.order_types:
        raise NotSupported(f"{adapter.broker.name} does not take {order_type.name} orders", connection=connection)
    instrument = check_instrument(InstrumentRef(isin=input.instrument.isin, symbol=input.instrument.symbol,
                                                exchange=input.instrument.exchange,
                                                broker_instrument_id=input.instrument.broker_instrument_id))
    check_quantity(input.quantity, caps)
    check_prices(order_type, input.limit_price, input.stop_price)
    tif = check_expiry(TimeInForce(input.time_in_force.value), input.expires_at, caps)
    check_text(input.notes, "notes", 256)
    check_text(input.idempotency_key, "idempotencyKey", 128)
    product = Product(input.product.value) if input.product else None
    if product is not None and caps.products and product not in caps.products:
        raise InvalidInput(f"{adapter.broker.name} has no product {product.name}", field="product")
    return adapter, OrderRequest(
        instrument=instrument, side=OrderSide(input.side.value), type=order_type, quantity=input.quantity,
        client_order_id="", account=account, allocation_group=group, limit_price=input.limit_price,
        stop_price=input.stop_price, time_in_force=tif, expires_at=input.expires_at, product=product,
        notes=input.notes,
    )


def _payload(input: PlaceOrderInput) -> dict[str, object]:
    return {
        "account": input.account_id, "group": input.allocation_group_id,
        "instrument": [input.instrument.isin, input.instrument.symbol, input.instrument.exchange,
                       input.instrument.broker_instrument_id],
        "side": input.side.value, "type": input.type.value, "quantity": str(input.quantity),
        "limit": str(input.limit_price), "stop": str(input.stop_price), "tif": input.time_in_force.value,
        "expires": input.expires_at.isoformat() if input.expires_at else None,
        "product": input.product.value if input.product else None, "notes": input.notes,
    }


@strawberry.type(description="Order mutations.")
class OrderMutations:
    @strawberry.mutation(description="Place an order (lemon: place and activate). Never sent twice for one "
                                     "idempotencyKey; a lost answer is reconciled by client order id.")
    async def place_order(self, info: Info, input: PlaceOrderInput) -> PlaceOrderResult:
        ctx = info.context
        try:
            adapter, request = _request(ctx, input)

            async def build(cid: str) -> PlaceOutcome:
                return await adapter.create_order(replace(request, client_order_id=cid))

            async def lookup(cid: str) -> DomainOrder | None:
                return await adapter.fetch_placed(replace(request, client_order_id=cid))

            outcome = await place(ctx, adapter, "placeOrder", build, _payload(input), input.idempotency_key, lookup)
            await ctx.published(outcome)
            return outcome_result(outcome)
        except GatewayError as exc:
            return to_user_error(exc)

    @strawberry.mutation(description="Answer a ConfirmationRequired: accept (with a PIN where asked) or decline.")
    async def confirm_order(self, info: Info, input: ConfirmOrderInput) -> PlaceOrderResult:
        ctx = info.context
        try:
            key = require(input.confirmation_id, ConfirmationKey, ctx.principal, ctx.registry.adapters, "confirmationId")
            adapter = ctx.registry.get(key.connection)
            outcome = await adapter.confirm_order(key, input.accept, input.pin)
            if outcome is None:
                return ConfirmationDeclined(confirmation_id=input.confirmation_id,
                                            message="declined: nothing was placed")
            await ctx.published(outcome)
            return outcome_result(outcome)
        except GatewayError as exc:
            return to_user_error(exc)

    @strawberry.mutation(description="Request cancellation of an order; the answer may still be PENDING_CANCEL.")
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> CancelOrderResult:
        ctx = info.context
        try:
            key = require(input.order_id, OrderKey, ctx.principal, ctx.registry.adapters, "orderId")
            order = await ctx.registry.get(key.connection).cancel_order(key)
            await ctx.published(order)
            return OrderCancelRequested(order=Order.from_domain(order))
        except GatewayError as exc:
            return to_user_error(exc, outcome_unknown=False)  # type: ignore[return-value]

    @strawberry.mutation(description="Change quantity, prices or expiry of a working order.")
    async def modify_order(self, info: Info, input: ModifyOrderInput) -> ModifyOrderResult:
        ctx = info.context
        try:
            key = require(input.order_id, OrderKey, ctx.principal, ctx.registry.adapters, "orderId")
            adapter = ctx.registry.get(key.connection)
            if not adapter.capabilities.modify_order:
                raise NotSupported(f"{adapter.broker.name} orders cannot be modified; cancel and place anew",
                                   connection=key.connection)
            if input.quantity is not None:
                check_quantity(input.quantity, adapter.capabilities)
            for name, value in (("limitPrice", input.limit_price), ("stopPrice", input.stop_price)):
                if value is not None and value <= 0:
                    raise InvalidInput(f"{name} must be greater than 0", field=name)
            tif = TimeInForce(input.time_in_force.value) if input.time_in_force else None
            if input.expires_at is not None:
                tif = check_expiry(tif or TimeInForce.GTD, input.expires_at, adapter.capabilities)
            update = OrderUpdate(quantity=input.quantity, limit_price=input.limit_price, stop_price=input.stop_price,
                                 time_in_force=tif, expires_at=input.expires_at)
            if update == OrderUpdate():
                raise InvalidInput("nothing to change", field="orderId")
            outcome = await adapter.modify_order(key, update)
            if isinstance(outcome, Confirmation):
                return outcome_result(outcome)  # type: ignore[return-value]
            await ctx.published(outcome)
            return OrderModified(order=Order.from_domain(outcome))
        except GatewayError as exc:
            return to_user_error(exc, outcome_unknown=False)  # type: ignore[return-value]
