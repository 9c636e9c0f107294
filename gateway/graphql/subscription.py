"""The ``orderStatusChanged`` subscription.

This first version polls: each subscription reads its accounts' orders every ``interval`` seconds
(through the adapters, so reads stay within each broker's client-side rate limit) and yields one
event per status change it sees. Events carry increasing ``eventId`` values within the stream.
Resuming with ``after`` needs the shared event bus and is refused until it exists.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from ..domain.enums import OrderStatus
from ..domain.errors import GatewayError, InvalidInput, OrderNotFound
from ..domain.keys import AccountKey, OrderKey
from ..domain.models import Order as DomainOrder
from .context import Info
from .enums import OrderStatusEnum
from .ids import decode
from .order.types import Order

__all__ = ["OrderStatusEvent", "Subscription"]

_ids = itertools.count(1)


@strawberry.type(description="An order changed status.")
class OrderStatusEvent:
    event_id: str = strawberry.field(description="Resume token: pass it back as `after` to continue without gaps.")
    order: Order = strawberry.field(description="The order after the change.")
    previous_status: OrderStatusEnum | None = strawberry.field(
        description="The status before the change; null for the first sight of an order.")
    status: OrderStatusEnum = strawberry.field(description="The new status.")
    at: datetime = strawberry.field(description="When the gateway saw the change (UTC).")


async def _targets(info: Info, account_id: strawberry.ID | None, order_id: strawberry.ID | None
                   ) -> tuple[list[AccountKey], OrderKey | None]:
    ctx = info.context
    order_key = None
    if order_id is not None:
        order_key = decode(order_id, OrderKey, ctx.principal, "orderId")
        if order_key is None:
            raise OrderNotFound("no such order")
    if account_id is not None:
        key = decode(account_id, AccountKey, ctx.principal, "accountId")
        if key is None:
            raise OrderNotFound("no such account")
        return [key], order_key
    if order_key is not None:
        return [AccountKey(order_key.connection, order_key.account_number)], order_key
    accounts: list[AccountKey] = []
    for name, adapter in ctx.registry.adapters.items():
        if ctx.principal.can_use(name):
            try:
                accounts.extend(a.key for a in await adapter.fetch_accounts())
            except GatewayError:
                continue
    return accounts, None


@strawberry.type(description="Live updates over WebSocket (graphql-transport-ws).")
class Subscription:
    @strawberry.subscription(description="Order status changes, for one order, one account or every account "
                                         "the caller may see.")
    async def order_status_changed(self, info: Info, account_id: strawberry.ID | None = None,
                                   order_id: strawberry.ID | None = None, after: str | None = None,
                                   ) -> AsyncGenerator[OrderStatusEvent, None]:
        if after is not None:
            raise InvalidInput("resuming with `after` is not available yet", field="after")
        accounts, order_key = await _targets(info, account_id, order_id)
        registry = info.context.registry
        seen: dict[OrderKey, OrderStatus] = {}
        first = True
        while True:
            for account in accounts:
                try:
                    orders: list[DomainOrder] = await registry.get(account.connection).fetch_orders(account)
                except GatewayError:
                    continue
                for order in orders:
                    if order_key is not None and order.key != order_key:
                        continue
                    before = seen.get(order.key)
                    seen[order.key] = order.status
                    if first or before == order.status:
                        continue
                    yield OrderStatusEvent(
                        event_id=str(next(_ids)), order=Order.from_domain(order),
                        previous_status=OrderStatusEnum(before.value) if before else None,
                        status=OrderStatusEnum(order.status.value), at=datetime.now(UTC))
            first = False
            await asyncio.sleep(1.0)
