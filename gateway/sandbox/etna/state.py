"""The ETNA venue's state beside the engine: users and tokens, wire ids, settings, and the
engine listener that keeps ETNA's bookkeeping (``StateId``, position ``Id`` / dates, late
rejection of orders that were accepted as ``PendingNew``)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal

from ..engine import Engine, SimAccount, SimOrder, SimPosition, SimStatus
from .auth import AuthStore, EtnaUser
from .resources import ORDER_ID_BASE
from .wire import EtnaError, ticks_of

__all__ = ["EtnaState"]


class EtnaState:
    """Everything the handlers share. ``positions_shape`` is ``"paged"`` (a ``PagingResult``, as
    the swagger pages type it) or ``"array"`` (a bare array, as the article shows)."""

    def __init__(self, engine: Engine, auth: AuthStore) -> None:
        self.engine = engine
        self.auth = auth
        self.positions_shape = "paged"
        self._request_ids = itertools.count(105_467)
        self._position_ids = itertools.count(21_483)
        engine.subscribe(self._on_change)

    # -- clocks and ids -------------------------------------------------------------------
    def now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return 0.0

    def next_request_id(self) -> int:
        return next(self._request_ids)

    # -- look-ups -------------------------------------------------------------------------
    def account(self, user: EtnaUser, account_id: str) -> SimAccount:
        """The account ``account_id`` of ``user``: 400 when not a number, 401 when another user's,
        500 when it does not exist (ETNA's answer to a user id passed as an account id)."""
        if not account_id.isdigit():
            raise EtnaError(400)
        account = self.engine.accounts.get(str(int(account_id)))
        if account is None:
            raise EtnaError(500)
        if account.id not in user.accounts:
            raise EtnaError(401)
        return account

    def order(self, account: SimAccount, order_id: str) -> SimOrder:
        if not order_id.lstrip("-").isdigit():
            raise EtnaError(400)
        sim_id = str(int(order_id) - ORDER_ID_BASE)
        order = self.engine.orders.get(sim_id)
        if order is None or order.account_id != account.id:
            raise EtnaError(404, {"Message": f"Order {order_id} is not found"})
        return order

    def owners(self, account: SimAccount) -> list[EtnaUser]:
        return [u for u in self.auth.users.values() if account.id in u.accounts]

    # -- position bookkeeping -------------------------------------------------------------
    def touch_position(self, pos: SimPosition, when: datetime, day_quantity: Decimal = Decimal(0)) -> None:
        x = pos.extra
        if "Id" not in x:
            x["Id"] = next(self._position_ids)
            x["CreateDate"] = ticks_of(when, x["Id"])
        x["ModifyDate"] = max(ticks_of(when, x["Id"] + 5), x["CreateDate"])
        x["DayQuantity"] = x.get("DayQuantity", Decimal(0)) + day_quantity

    def _on_change(self, order: SimOrder) -> None:
        x = order.extra
        x["state_id"] = x.get("state_id", 168_000) + 1
        seen = x.get("seen_filled", Decimal(0))
        if order.filled_quantity > seen:
            x["seen_filled"] = order.filled_quantity
            account = self.engine.accounts[order.account_id]
            pos = account.position(order.instrument, order.product)
            self.touch_position(pos, datetime.now(UTC), order.filled_quantity - seen)
        reason = x.get("reject_reason")
        if reason and order.status is SimStatus.WORKING:
            self.engine.reject(order, reason)
