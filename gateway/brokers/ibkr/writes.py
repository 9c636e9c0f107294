"""IBKR order writes: place (with reply questions), confirm, modify, cancel, square off.

A mixin of :class:`.adapter.IbkrAdapter`. An order request and its automatic replies run under the
connection's session lock; a question for the user releases it and becomes a pending confirmation
(:mod:`.session` says how it is answered later). A write whose answer is lost is reconciled by its
``cOID``, never sent again blindly.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...domain.enums import OrderSide, OrderType
from ...domain.errors import (
    BrokerError,
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
from .session import OrderSpec

if TYPE_CHECKING:
    from .adapter import IbkrAdapter

__all__ = ["OrderWrites"]

#: how often a request is sent again when IBKR voided its reply chain under us
_RESUBMITS = 2


class OrderWrites:
    """The write verbs of the IBKR adapter."""

    async def create_order(self: IbkrAdapter, request: OrderRequest) -> PlaceOutcome:
        """POST iserver/account/{account or group}/orders with ``cOID``. A question comes back as a
        :class:`Confirmation` (ids such as ``o163``, ``p6``); the session is free meanwhile.

        Raises ``AuthenticationError`` while logged out, ``InvalidOrder`` / ``PermissionDenied`` /
        ``InsufficientFunds`` for IBKR's rejects, ``OrderOutcomeUnknown`` when the answer was lost
        and the ``cOID`` is not found."""
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
        spec = OrderSpec(account, target, request.client_order_id, body)
        async with self.session.lock:
            return await self._submit(spec, frozenset())

    async def _master(self: IbkrAdapter) -> str:
        body = await self.client.accounts()
        self._learn(body)
        if self.session.master is None:
            raise InvalidInput("this IBKR session has no advisor master account", field="allocationGroupId")
        return self.session.master

    async def confirm_order(self: IbkrAdapter, key: ConfirmationKey, accept: bool,
                            pin: str | None = None) -> PlaceOutcome | None:
        """Answer the question ``key`` stands for (``POST iserver/reply/{id}``, or the request sent
        again with the accepted questions answered, see :mod:`.session`). ``accept=False`` discards
        the order (``None``); accepting may yield another :class:`Confirmation`.

        Raises ``OrderNotFound`` for an unknown, answered or expired confirmation."""
        pending = self.session.take(key.token)
        if pending is None:
            raise OrderNotFound("the confirmation is unknown or has expired; place the order again",
                                connection=self.connection)
        if not accept:
            async with self.session.lock:
                if self.session.seq == pending.seq:  # still alive at IBKR: say no explicitly
                    with contextlib.suppress(InvalidOrder, OrderNotFound, OperationFailed):
                        await self.client.reply(pending.reply_id, False)  # {"error": "Order not confirmed "}
            return None
        await self._ensure_authenticated()
        accepted = pending.accepted | pending.asked
        async with self.session.lock:
            if self.session.seq == pending.seq:
                try:
                    answer = await self.client.reply(pending.reply_id, True)
                except OrderNotFound:
                    pass  # voided after all: send the request again below
                except (RequestTimeout, BrokerNotAvailable):
                    return await self._reconcile(pending.spec)
                else:
                    return await self._settle(answer, pending.spec, accepted)
            await self._preflight()
            return await self._submit(pending.spec, accepted)

    async def _send(self: IbkrAdapter, spec: OrderSpec) -> Any:
        if spec.order_id is not None:
            return await self.client.modify_order(spec.target, spec.order_id, spec.body)
        return await self.client.place_orders(spec.target, [spec.body])

    async def _submit(self: IbkrAdapter, spec: OrderSpec, accepted: frozenset[str]) -> PlaceOutcome:
        """Send ``spec`` and settle the answer (lock held)."""
        await self._preflight()
        for attempt in range(_RESUBMITS + 1):
            try:
                answer = await self._send(spec)
            except (RequestTimeout, BrokerNotAvailable):
                if spec.order_id is not None:
                    raise
                return await self._reconcile(spec)
            try:
                return await self._settle(answer, spec, accepted)
            except OrderNotFound as exc:
                # "reply id not found": a request of another task reached the session between our
                # request and our reply; nothing was created, so the request may go again
                if "reply id" not in str(exc.broker_message or exc.message) or attempt == _RESUBMITS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _settle(self: IbkrAdapter, answer: Any, spec: OrderSpec, accepted: frozenset[str]) -> PlaceOutcome:
        """With the lock held: reply ``yes`` to questions the user accepted already; an acceptance
        reads the order back; any other question becomes a :class:`Confirmation`."""
        while True:
            outcome = read_answer(answer)
            if isinstance(outcome, Accepted):
                try:
                    order = await self._order_status(spec.account, outcome.order_id)
                except (BrokerError, OperationFailed):
                    # the order exists: a status read that fails (a session replaced behind our back
                    # forgets the pre-flight) must not read as a reject; re-validate and read again
                    self.session.forget()
                    await self._preflight()
                    order = await self._order_status(spec.account, outcome.order_id)
                if spec.client_order_id:
                    order.client_order_id = spec.client_order_id
                return order
            if outcome.message_ids and set(outcome.message_ids) <= accepted:
                try:
                    answer = await self.client.reply(outcome.reply_id, True)
                except (RequestTimeout, BrokerNotAvailable):
                    return await self._reconcile(spec)
                continue
            pending = self.session.ask(spec, outcome.reply_id, outcome.message_ids, accepted)
            return Confirmation(ConfirmationKey(self.connection, pending.token), outcome.messages,
                                outcome.message_ids)

    async def _order_status(self: IbkrAdapter, account: str, order_id: str) -> Order:
        await self._select(account)
        body = await self.client.order_status(order_id)
        return parse_order_status(self.connection, account, body, self.session.groups)

    async def _reconcile(self: IbkrAdapter, spec: OrderSpec) -> Order:
        """An order write whose answer was lost: look the order up by ``cOID`` (lock held)."""
        if spec.order_id is None and spec.client_order_id:
            with contextlib.suppress(OperationFailed):
                found = await self._find_by_coid(spec.account, spec.client_order_id)
                if found is not None:
                    return found
        raise OrderOutcomeUnknown("IBKR did not answer the order request", connection=self.connection,
                                  client_order_id=spec.client_order_id or "")

    async def cancel_order(self: IbkrAdapter, key: OrderKey) -> Order:
        """DELETE iserver/account/{acct}/order/{id}, then the order's status (PendingCancel → Cancelled)."""
        await self._ensure_authenticated()
        async with self.session.lock:
            await self._preflight()
            await self.client.cancel_order(key.account_number, key.broker_order_id)
            return await self._order_status(key.account_number, key.broker_order_id)

    async def modify_order(self: IbkrAdapter, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        """POST iserver/account/{acct}/order/{id} with the whole order object, changed; questions
        come back as a :class:`Confirmation` like placement. Raises ``InvalidOrder`` for a
        terminal order, ``OrderNotFound`` for an unknown one."""
        await self._ensure_authenticated()
        async with self.session.lock:
            await self._preflight()
            current = await self._order_status(key.account_number, key.broker_order_id)
            if current.status.is_terminal:
                raise InvalidOrder(f"IBKR order {key.broker_order_id} is {current.broker_status}",
                                   connection=self.connection)
            spec = OrderSpec(key.account_number, key.account_number, current.client_order_id,
                             build_modify(current, update), key.broker_order_id)
            return await self._submit(spec, frozenset())

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

