"""IBKR order writes: place (with reply questions), confirm, modify, cancel, square off.

A mixin of :class:`.adapter.IbkrAdapter`. Placement holds the connection's session lock from the
first request to the last reply; a question keeps it as a lease (:mod:`.session`) until
``confirm_order`` answers it. A write whose answer is lost is reconciled by its ``cOID``, never
sent again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...domain.enums import OrderSide, OrderType
from ...domain.errors import (
    BrokerNotAvailable,
    InvalidInput,
    InvalidOrder,
    OperationFailed,
    OrderNotFound,
    OrderOutcomeUnknown,
    RequestTimeout,
)
from ...domain.keys import ConfirmationKey, OrderKey
from ...domain.models import Instrument, Order, Position
from ...domain.requests import InstrumentRef, OrderRequest, OrderUpdate
from ..base import Confirmation, PlaceOutcome
from .orders import Accepted, build_modify, build_order, read_answer
from .parsing import parse_order_status

if TYPE_CHECKING:
    from .adapter import IbkrAdapter

__all__ = ["OrderWrites"]


@dataclass(slots=True)
class _Pending:
    """What an outstanding reply question belongs to."""

    account: str  # the account the order is keyed under (the master for a group order)
    target: str  # the path account: an account or an allocation group name
    client_order_id: str | None
    order_id: str | None = None  # set for a modification


class OrderWrites:
    """The write verbs of the IBKR adapter."""

    async def create_order(self: IbkrAdapter, request: OrderRequest) -> PlaceOutcome:
        """POST iserver/account/{account or group}/orders with ``cOID``; a question comes back as a
        :class:`Confirmation` that holds the session until answered (``lease_seconds``)."""
        await self._ensure_authenticated()
        if (request.account is None) == (request.allocation_group is None):
            raise InvalidInput("give exactly one of account / allocation group", field="accountId")
        instrument = await self.instruments.resolve(request.instrument)
        if request.allocation_group is not None:
            target = request.allocation_group.name
            account = self.session.master or (await self._master())
        else:
            assert request.account is not None
            target = account = request.account.account_number
        body = build_order(request, instrument.broker_instrument_id or "", target)
        pending = _Pending(account, target, request.client_order_id)
        await self.session.lock.acquire()
        try:
            await self._preflight()
            answer = await self.client.place_orders(target, [body])
        except (RequestTimeout, BrokerNotAvailable):
            return await self._reconcile(pending)  # releases the lock
        except BaseException:
            self.session.lock.release()
            raise
        return await self._settle(answer, pending)

    async def _master(self: IbkrAdapter) -> str:
        body = await self.client.accounts()
        self._learn(body)
        if self.session.master is None:
            raise InvalidInput("this IBKR session has no advisor master account", field="allocationGroupId")
        return self.session.master

    async def confirm_order(self: IbkrAdapter, key: ConfirmationKey, accept: bool,
                            pin: str | None = None) -> PlaceOutcome | None:
        """POST iserver/reply/{id} for the question ``key`` stands for: ``accept=False`` discards
        the order (``None``); accepting may yield another :class:`Confirmation`."""
        lease = self.session.take(key.token)
        if lease is None:
            raise OrderNotFound("the confirmation is unknown or has expired; place the order again",
                                connection=self.connection)
        pending: _Pending = lease.context
        if not accept:
            try:
                await self.client.reply(lease.reply_id, False)
            except InvalidOrder:
                pass  # {"error": "Order not confirmed "} is the expected answer to a refusal
            finally:
                self.session.lock.release()
            return None
        try:
            answer = await self.client.reply(lease.reply_id, True)
        except (RequestTimeout, BrokerNotAvailable):
            return await self._reconcile(pending)
        except BaseException:
            self.session.lock.release()
            raise
        return await self._settle(answer, pending)

    async def _settle(self: IbkrAdapter, answer: Any, pending: _Pending) -> PlaceOutcome:
        """With the lock held: a question keeps it (a lease); an acceptance reads the order and
        releases it."""
        try:
            outcome = read_answer(answer)
            if not isinstance(outcome, Accepted):
                lease = self.session.grant(outcome.reply_id, pending)
                return Confirmation(ConfirmationKey(self.connection, lease.token), outcome.messages,
                                    outcome.message_ids)
            order = await self._order_status(pending.account, outcome.order_id)
            if pending.client_order_id:
                order.client_order_id = pending.client_order_id
            self.session.lock.release()
            return order
        except BaseException:
            self.session.lock.release()
            raise

    async def _order_status(self: IbkrAdapter, account: str, order_id: str) -> Order:
        await self._select(account)
        body = await self.client.order_status(order_id)
        return parse_order_status(self.connection, account, body, self.session.groups)

    async def _reconcile(self: IbkrAdapter, pending: _Pending) -> Order:
        """An order write whose answer was lost: look the order up by ``cOID`` (lock held; released)."""
        try:
            if pending.client_order_id:
                with contextlib.suppress(OperationFailed):
                    found = await self._find_by_coid(pending.account, pending.client_order_id)
                    if found is not None:
                        return found
            raise OrderOutcomeUnknown("IBKR did not answer the order request", connection=self.connection,
                                      client_order_id=pending.client_order_id or "")
        finally:
            self.session.lock.release()

    async def cancel_order(self: IbkrAdapter, key: OrderKey) -> Order:
        """DELETE iserver/account/{acct}/order/{id}, then the order's status (PendingCancel → Cancelled)."""
        await self._ensure_authenticated()
        async with self.session.lock:
            await self._preflight()
            await self.client.cancel_order(key.account_number, key.broker_order_id)
            return await self._order_status(key.account_number, key.broker_order_id)

    async def modify_order(self: IbkrAdapter, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        """POST iserver/account/{acct}/order/{id} with the whole order object, changed; questions
        come back as a :class:`Confirmation` like placement."""
        await self._ensure_authenticated()
        await self.session.lock.acquire()
        try:
            current = await self._order_status(key.account_number, key.broker_order_id)
            if current.status.is_terminal:
                raise InvalidOrder(f"IBKR order {key.broker_order_id} is {current.broker_status}",
                                   connection=self.connection)
            answer = await self.client.modify_order(key.account_number, key.broker_order_id,
                                                    build_modify(current, update))
        except BaseException:
            self.session.lock.release()
            raise
        return await self._settle(answer, _Pending(key.account_number, key.account_number,
                                                   current.client_order_id, key.broker_order_id))

    async def square_off_position(self: IbkrAdapter, position: Position, quantity: Decimal, order_type: OrderType,
                                  limit_price: Decimal | None, client_order_id: str) -> PlaceOutcome:
        """The opposite order for ``quantity`` (IBKR has no square-off endpoint)."""
        if quantity <= 0 or quantity > abs(position.quantity):
            raise InvalidInput("quantity must be positive and at most the position's size", field="quantity")
        ins: Instrument = position.instrument
        request = OrderRequest(
            instrument=InstrumentRef(symbol=ins.symbol, broker_instrument_id=ins.broker_instrument_id),
            side=OrderSide.SELL if position.quantity > 0 else OrderSide.BUY, type=order_type, quantity=quantity,
            client_order_id=client_order_id, account=position.account_key, limit_price=limit_price)
        return await self.create_order(request)

