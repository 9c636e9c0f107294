"""The ``orderStatusChanged`` subscription (graphql-transport-ws over WebSocket, or Server-Sent Events).

A subscription names one order, one account, or (neither) every account the caller may see. It keeps
one shared watcher per watched account running (``gateway.events.watchers``) and reads the event bus:
first what followed ``after`` (a resume), then live events, without gaps or duplicates. A resume that
reaches beyond the bus's retention marks its first event ``missedEvents: true``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry

from ..domain.errors import GatewayError, InvalidInput, OrderNotFound, RateLimitExceeded
from ..domain.keys import AccountKey, OrderKey
from ..events import OrderEvent
from ..events.bus import parse_id
from .context import Info
from .enums import OrderStatusEnum
from .errors import to_graphql_error
from .ids import require
from .order.types import Order

__all__ = ["EventTimeSource", "OrderStatusEvent", "Subscription"]


@strawberry.enum(name="EventTimeSource", description="Where an event's `at` comes from.")
class EventTimeSource(Enum):
    BROKER = strawberry.enum_value("broker", description="The broker's own time for the change (the order's "
                                                         "fill, cancel, rejection or update time).")
    GATEWAY = strawberry.enum_value("gateway", description="The broker reports no time for the change: `at` is "
                                                           "when the gateway received it (`receivedAt`).")


@strawberry.type(description="An order changed status.")
class OrderStatusEvent:
    event_id: str = strawberry.field(description="Resume token: pass it back as `after` to continue without gaps. "
                                                 "Delivery is at least once: an event seen twice has the same "
                                                 "`eventId`, so de-duplicate on it.")
    order: Order = strawberry.field(description="The order after the change.")
    previous_status: OrderStatusEnum | None = strawberry.field(
        description="The status before the change; null for the first sight of an order.")
    status: OrderStatusEnum = strawberry.field(description="The new status.")
    at: datetime = strawberry.field(description="When the change happened (UTC): the broker's time for it (fill, "
                                                "cancel, rejection time) where the broker reports one, otherwise "
                                                "when the gateway received it; `atSource` says which.")
    at_source: EventTimeSource = strawberry.field(description="Whether `at` is the broker's time or the gateway's "
                                                              "receipt time.")
    received_at: datetime = strawberry.field(description="When the gateway received the change (UTC), whatever the "
                                                         "broker's time for it.")
    missed_events: bool = strawberry.field(
        description="True on the first event of a resume that reached beyond the retention window: events were "
                    "lost in between, so re-read the orders.")

    @classmethod
    def from_event(cls, event: OrderEvent, missed: bool = False) -> OrderStatusEvent:
        """The GraphQL object of ``event``, built once and shared by every subscriber it goes to."""
        key = (event.event_id, missed)
        built = _built.get(key)
        if built is None:
            built = cls(event_id=event.event_id, order=Order.from_domain(event.order),
                        previous_status=OrderStatusEnum(event.previous_status.value) if event.previous_status else None,
                        status=OrderStatusEnum(event.status.value), at=event.at,
                        at_source=EventTimeSource.BROKER if event.at_from_broker else EventTimeSource.GATEWAY,
                        received_at=event.received_at or event.at, missed_events=missed)
            _built[key] = built
            while len(_built) > 256:
                _built.popitem(last=False)
        return built


_built: OrderedDict[tuple[str, bool], OrderStatusEvent] = OrderedDict()


async def _targets(info: Info, account_id: strawberry.ID | None, order_id: strawberry.ID | None
                   ) -> tuple[list[AccountKey], OrderKey | None]:
    """The accounts to watch and the order to follow; ``OrderNotFound`` (``NOT_FOUND``, as for queries:
    nothing says whether the id exists for someone else) when the account is not in its connection's
    account list or the broker has no such order."""
    ctx = info.context
    order_key = None
    if order_id is not None:
        order_key = require(order_id, OrderKey, ctx.principal, ctx.registry.adapters, "orderId")
    if account_id is not None:
        key = require(account_id, AccountKey, ctx.principal, ctx.registry.adapters, "accountId")
        if order_key is not None and (order_key.connection, order_key.account_number) != (key.connection,
                                                                                           key.account_number):
            raise InvalidInput("the order is not in that account", field="orderId")
        if await ctx.loaders.account(key) is None:
            raise OrderNotFound("no such account")
        if order_key is not None:
            await ctx.loaders.order_by_key.load((order_key, None))  # OrderNotFound when there is none
        return [key], order_key
    if order_key is not None:
        await ctx.loaders.order_by_key.load((order_key, None))  # OrderNotFound when there is none
        return [AccountKey(order_key.connection, order_key.account_number)], order_key
    accounts: list[AccountKey] = []
    names = [n for n in ctx.registry.adapters if ctx.principal.can_use(n)]
    results = await asyncio.gather(*(ctx.loaders.account_list_by_connection.load(n) for n in names),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, GatewayError):
            continue  # a connection that is down now is not watched by this subscription
        if isinstance(result, BaseException):
            raise result
        accounts.extend(a.key for a in result)
    return accounts, order_key


@strawberry.type(description="Live updates over WebSocket (graphql-transport-ws) or Server-Sent Events.")
class Subscription:
    @strawberry.subscription(description="Order status changes for one order, one account, or every account the "
                                         "caller may see. Resume with `after: <eventId>` after a reconnect.")
    async def order_status_changed(self, info: Info, account_id: strawberry.ID | None = None,
                                   order_id: strawberry.ID | None = None, after: str | None = None,
                                   ) -> AsyncGenerator[OrderStatusEvent, None]:
        ctx = info.context
        events = ctx.events
        try:
            if after is not None:
                try:
                    parse_id(after)
                except ValueError:
                    raise InvalidInput("after must be an eventId", field="after") from None
            accounts, order_key = await _targets(info, account_id, order_id)
        except GatewayError as exc:  # refused before the stream starts: a coded error, as for queries
            raise to_graphql_error(exc, info.path.as_list()) from None
        wanted = {(a.connection, a.account_number) for a in accounts}

        def accepts(event: OrderEvent) -> bool:
            key = event.order.key
            if order_key is not None:
                return key == order_key
            return (key.connection, key.account_number) in wanted

        sub = events.bus.hub.add(accepts)  # live events queue up while the replay is read
        counted = not ctx.grouped  # a group counts its members (gateway.events.fanout)
        if counted:
            events.metrics.active_subscriptions.inc()
        try:
            async with events.watchers.watching(accounts):
                last = (0, 0)
                pending_missed = False
                if after is not None:
                    replayed, pending_missed = await events.bus.replay(after)
                    for event in replayed:
                        if accepts(event):
                            yield OrderStatusEvent.from_event(event, pending_missed)
                            pending_missed = False
                            last = parse_id(event.event_id)
                while True:
                    event = await sub.queue.get()
                    if event is None:
                        raise RateLimitExceeded("the subscriber did not keep up; resume with `after`")
                    if parse_id(event.event_id) <= last:
                        continue
                    last = parse_id(event.event_id)
                    yield OrderStatusEvent.from_event(event, pending_missed)
                    pending_missed = False
        finally:
            events.bus.hub.remove(sub)
            if counted:
                events.metrics.active_subscriptions.dec()
