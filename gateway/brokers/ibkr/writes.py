"""IBKR order writes: place (with reply questions), confirm, modify, cancel, square off.

A mixin of :class:`.adapter.IbkrAdapter`. Every write runs at write priority: its pacing permits come
first, then the session's critical section, inside which the write talks to the session alone (an
order request and its automatic replies would be voided by any other request). A question for the
user ends the section and becomes a pending confirmation (:mod:`.confirmations`, shared by the
replicas through Redis when configured). A write whose answer is lost, or that IBKR refuses because
its ``cOID`` is already registered, is reconciled by its ``cOID`` after the section, never sent again
blindly.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...domain.enums import OrderSide, OrderType
from ...domain.errors import (
    BrokerBusy,
    BrokerError,
    IdempotencyConflict,
    InvalidInput,
    InvalidOrder,
    OperationFailed,
    OrderNotFound,
    OrderOutcomeUnknown,
    RateLimitExceeded,
)
from ...domain.keys import AccountKey, ConfirmationKey, OrderKey
from ...domain.models import Instrument, Order, Position
from ...domain.requests import InstrumentRef, OrderRequest, OrderUpdate
from .. import budget
from ..base import Confirmation, PlaceOutcome
from ..placement import reconcile
from ..section import Held
from . import first_seen
from .confirmations import Answer, OrderSpec, PendingConfirmation
from .orders import Accepted, build_modify, build_order, read_answer
from .parsing import parse_order_status

if TYPE_CHECKING:
    from .adapter import IbkrAdapter

__all__ = ["OrderWrites"]

#: how often a request is sent again when IBKR voided its reply chain under us
_RESUBMITS = 2
_STATUS = ("GET", "iserver/account/order/status/0")
_REPLY = ("POST", "iserver/reply/0")


class _Reconcile(Exception):
    """Internal: the write may have reached IBKR (answer lost, or its cOID is already registered):
    look the order up by its cOID once the section is left."""


class OrderWrites:
    """The write verbs of the IBKR adapter."""

    async def create_order(self: IbkrAdapter, request: OrderRequest) -> PlaceOutcome:
        """POST iserver/account/{account or group}/orders with ``cOID``. A question comes back as a
        :class:`Confirmation` (ids such as ``o163``, ``p6``); the session is free meanwhile.

        Raises ``AuthenticationError`` while logged out, ``InvalidOrder`` / ``PermissionDenied`` /
        ``InsufficientFunds`` for IBKR's rejects, ``BrokerBusy`` when the session could not take the
        order before the deadline (not sent), ``OrderOutcomeUnknown`` when the answer was lost and
        the ``cOID`` is not found."""
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
        return await self._write(OrderSpec(account, target, request.client_order_id, body), frozenset())

    async def _master(self: IbkrAdapter) -> str:
        body = await self.client.accounts()
        self._learn(body)
        if self.session.master is None:
            raise InvalidInput("this IBKR session has no advisor master account", field="allocationGroupId")
        return self.session.master

    async def _write(self: IbkrAdapter, spec: OrderSpec, accepted: frozenset[str],
                     pending: PendingConfirmation | None = None) -> PlaceOutcome:
        """Send ``spec`` (or answer ``pending``'s question) inside the section, alone on the session."""
        path = f"iserver/account/{spec.target}/" + (f"order/{spec.order_id}" if spec.order_id else "orders")
        with budget.writing():
            try:
                async with self.scheduler.permits(self._section_calls(("POST", path), _REPLY, _STATUS)), \
                        self.section.hold() as held, self.scheduler.exclusive():
                    if pending is not None and pending.replica == self.replica and self.session.seq == pending.seq:
                        try:
                            answer = await self.client.reply(pending.reply_id, True)
                        except OrderNotFound:
                            pass  # voided after all: send the request again below
                        except OperationFailed as exc:
                            if not _maybe_sent(exc):
                                raise
                            raise _Reconcile from None
                        else:
                            try:
                                return await self._settle(held, answer, spec, accepted)
                            except OperationFailed as exc:
                                if spec.order_id is not None or not spec.client_order_id:
                                    raise
                                raise _Reconcile from exc
                    return await self._submit(held, spec, accepted)
            except _Reconcile:
                pass
        return await self._reconcile(spec)

    async def confirm_order(self: IbkrAdapter, key: ConfirmationKey, accept: bool,
                            pin: str | None = None) -> PlaceOutcome | None:
        """Answer the question ``key`` stands for (``POST iserver/reply/{id}``, or the request sent
        again with the accepted questions answered, see :mod:`.session`). ``accept=False`` discards
        the order (``None``); accepting may yield another :class:`Confirmation`. A confirmation
        answered before (on any replica) answers the same again.

        Raises ``OrderNotFound`` for a confirmation never issued or long expired."""
        pending = await self.confirmations.take(key.token)
        if pending is None:
            answer = await self.confirmations.wait_answer(key.token)
            if answer is None:
                raise OrderNotFound("the confirmation is unknown or has expired; place the order again",
                                    connection=self.connection)
            return await self._replay(answer)
        outcome: PlaceOutcome | None = None
        answer: Answer | None = None
        try:
            if not accept:
                await self._decline(pending)
                answer = Answer("declined")
                return None
            await self._ensure_authenticated()
            outcome = await self._write(pending.spec, pending.accepted | pending.asked, pending)
            answer = self._answer_of(outcome)
            return outcome
        except OrderOutcomeUnknown:
            answer = Answer("unknown", order=(pending.spec.account, pending.spec.client_order_id or ""))
            raise
        except BrokerBusy:
            await self.confirmations.put(pending)  # nothing was sent: the question may be answered again
            raise
        finally:
            await self.confirmations.settle(key.token, answer)

    async def _decline(self: IbkrAdapter, pending: PendingConfirmation) -> None:
        """Say no to a question that may still be alive at IBKR; nothing is placed either way."""
        if pending.replica != self.replica or self.session.seq != pending.seq:
            return
        with budget.writing(), contextlib.suppress(InvalidOrder, OrderNotFound, OperationFailed):
            async with self.scheduler.permits([_REPLY]), self.section.hold(), self.scheduler.exclusive():
                if self.session.seq == pending.seq:
                    await self.client.reply(pending.reply_id, False)  # {"error": "Order not confirmed "}

    @staticmethod
    def _answer_of(outcome: PlaceOutcome) -> Answer:
        if isinstance(outcome, Confirmation):
            return Answer("asked", token=outcome.key.token, messages=outcome.messages, message_ids=outcome.message_ids)
        return Answer("placed", order=(outcome.key.account_number, outcome.key.broker_order_id))

    async def _replay(self: IbkrAdapter, answer: Answer) -> PlaceOutcome | None:
        """What an answered confirmation came to, again."""
        if answer.kind == "declined":
            return None
        if answer.kind == "asked" and answer.token:
            return Confirmation(ConfirmationKey(self.connection, answer.token), answer.messages, answer.message_ids)
        assert answer.order is not None
        account, ident = answer.order
        if answer.kind == "placed":
            return await self.fetch_order(OrderKey(self.connection, account, ident))
        return await reconcile(lambda: self._by_coid(account, ident), client_order_id=ident,
                               connection=self.connection, cause="IBKR did not answer the confirmation",
                               visibility=self.visibility)

    async def _send(self: IbkrAdapter, spec: OrderSpec) -> Any:
        if spec.order_id is not None:
            return await self.client.modify_order(spec.target, spec.order_id, spec.body)
        return await self.client.place_orders(spec.target, [spec.body])

    async def _submit(self: IbkrAdapter, held: Held, spec: OrderSpec, accepted: frozenset[str]) -> PlaceOutcome:
        """Send ``spec`` and settle the answer (section held, alone on the session)."""
        await self._preflight(held)
        for attempt in range(_RESUBMITS + 1):
            held.check()
            try:
                answer = await self._send(spec)
            except OperationFailed as exc:
                # timeout, reset, 5xx, an unreadable answer: the order may exist (a modification is
                # not reconciled: its effect cannot be told from the order alone)
                if spec.order_id is not None or not _maybe_sent(exc):
                    raise
                raise _Reconcile from None
            except InvalidOrder as exc:
                text = str(exc.broker_message or exc.message).lower()
                if "already registered" in text and spec.order_id is None and spec.client_order_id:
                    raise _Reconcile from None  # the cOID exists: that order is the answer
                raise
            try:
                return await self._settle(held, answer, spec, accepted)
            except OperationFailed as exc:
                if spec.order_id is not None or not spec.client_order_id:
                    raise
                raise _Reconcile from exc  # the request went out: whatever failed since, look the order up
            except OrderNotFound as exc:
                # "reply id not found": a request reached the session between our request and our
                # reply (another replica's); nothing was created, so the request may go again
                if "reply id" not in str(exc.broker_message or exc.message) or attempt == _RESUBMITS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _settle(self: IbkrAdapter, held: Held, answer: Any, spec: OrderSpec,
                      accepted: frozenset[str]) -> PlaceOutcome:
        """With the section held: reply ``yes`` to questions the user accepted already; an
        acceptance reads the order back; any other question becomes a :class:`Confirmation`."""
        while True:
            outcome = read_answer(answer)
            if isinstance(outcome, Accepted):
                try:
                    order = await self._order_status(held, spec.account, outcome.order_id)
                except (BrokerError, OperationFailed):
                    # the order exists: a status read that fails (a session replaced behind our back
                    # forgets the pre-flight) must not read as a reject; re-validate and read again
                    self.session.forget()
                    self.section.forget()
                    held.value = None
                    await self._preflight(held)
                    order = await self._order_status(held, spec.account, outcome.order_id)
                if spec.client_order_id:
                    order.client_order_id = spec.client_order_id
                return order
            if outcome.message_ids and set(outcome.message_ids) <= accepted:
                held.check()
                try:
                    answer = await self.client.reply(outcome.reply_id, True)
                except OperationFailed as exc:
                    if not _maybe_sent(exc):
                        raise
                    raise _Reconcile from None
                continue
            pending = self.confirmations.new(spec, outcome.reply_id, outcome.message_ids, accepted,
                                             self.session.seq, self.replica)
            await self.confirmations.put(pending)
            return Confirmation(ConfirmationKey(self.connection, pending.token), outcome.messages,
                                outcome.message_ids)

    async def _order_status(self: IbkrAdapter, held: Held, account: str, order_id: str) -> Order:
        await self._select(held, account)
        held.check()
        body = await self.client.order_status(order_id)
        return first_seen.stamp([parse_order_status(self.connection, account, body, self.session.groups)])[0]

    async def _reconcile(self: IbkrAdapter, spec: OrderSpec) -> Order:
        """An order write whose answer was lost, or whose ``cOID`` IBKR has already registered: the
        order with that ``cOID`` (fresh reads for the visibility delay, :mod:`..placement`).
        ``IdempotencyConflict`` when that order is not the one ``spec`` describes;
        ``OrderOutcomeUnknown`` when none is found."""
        if spec.order_id is None and spec.client_order_id:
            found = await reconcile(lambda: self._by_coid(spec.account, spec.client_order_id or ""),
                                    client_order_id=spec.client_order_id, connection=self.connection,
                                    cause="IBKR did not answer the order request", visibility=self.visibility)
            if not _same(found, spec):
                raise IdempotencyConflict("the client order id was used for a different IBKR order",
                                          connection=self.connection)
            return found
        raise OrderOutcomeUnknown("IBKR did not answer the order request", connection=self.connection,
                                  client_order_id=spec.client_order_id or "")

    async def _by_coid(self: IbkrAdapter, account: str, client_order_id: str) -> Order | None:
        """The order of ``account`` (the master for a group's order) whose ``order_ref`` is
        ``client_order_id`` (a fresh live-orders read), or ``None``."""
        with budget.fresh():
            orders = await self.fetch_orders(AccountKey(self.connection, account))
        return next((o for o in orders if o.client_order_id == client_order_id), None)

    async def fetch_placed(self: IbkrAdapter, request: OrderRequest) -> Order | None:
        """The order ``request`` placed, by ``cOID``: in its account, or the master's orders for an
        allocation group's order."""
        account = request.account.account_number if request.account is not None else (
            self.session.master or await self._master())
        return await self._by_coid(account, request.client_order_id)

    async def cancel_order(self: IbkrAdapter, key: OrderKey) -> Order:
        """DELETE iserver/account/{acct}/order/{id}, then the order's status (PendingCancel → Cancelled)."""
        await self._ensure_authenticated()
        path = f"iserver/account/{key.account_number}/order/{key.broker_order_id}"
        with budget.writing():
            async with self.scheduler.permits(self._section_calls(("DELETE", path), _STATUS)), \
                    self.section.hold() as held, self.scheduler.exclusive():
                await self._preflight(held)
                held.check()
                await self.client.cancel_order(key.account_number, key.broker_order_id)
                return await self._order_status(held, key.account_number, key.broker_order_id)

    async def modify_order(self: IbkrAdapter, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        """POST iserver/account/{acct}/order/{id} with the whole order object, changed; questions
        come back as a :class:`Confirmation` like placement. Raises ``InvalidOrder`` for a
        terminal order, ``OrderNotFound`` for an unknown one."""
        await self._ensure_authenticated()
        with budget.writing():
            async with self.scheduler.permits(self._section_calls(_STATUS)), self.section.hold() as held:
                await self._preflight(held)
                current = await self._order_status(held, key.account_number, key.broker_order_id)
        if current.status.is_terminal:
            raise InvalidOrder(f"IBKR order {key.broker_order_id} is {current.broker_status}",
                               connection=self.connection)
        spec = OrderSpec(key.account_number, key.account_number, current.client_order_id,
                         build_modify(current, update), key.broker_order_id)
        return await self._write(spec, frozenset())

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


def _maybe_sent(exc: OperationFailed) -> bool:
    """Whether a failed request may have reached IBKR (not refused before sending, not a 429)."""
    return exc.sent and not isinstance(exc, RateLimitExceeded)


def _same(order: Order, spec: OrderSpec) -> bool:
    """Whether the order found by ``cOID`` is the one ``spec`` asked for (contract, side, quantity)."""
    body = spec.body
    return (str(order.instrument.broker_instrument_id) == str(body.get("conid"))
            and order.side.value.upper() == str(body.get("side", "")).upper()
            and order.quantity == Decimal(str(body.get("quantity"))))
