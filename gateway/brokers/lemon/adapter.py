"""The lemon.markets adapter: build params → call ``LemonClient`` → parse.

One API key is one account (``GET account``); no path carries an account id, so every read checks
that the account it is asked for is this key's. Placement is two calls, ``POST orders`` (always with
``idempotency`` = the client order id) then ``POST orders/{id}/activate``; a write whose answer is
lost is reconciled by reading the order back by its ``idempotency``, never by sending it again.
Pagination is pushed down: a Relay window maps onto lemon's ``limit``/``page`` where it can.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ...config import ConnectionConfig
from ...domain.enums import Broker, OrderType
from ...domain.errors import (
    GatewayError,
    IdempotencyConflict,
    InvalidInput,
    InvalidOrder,
    OperationFailed,
    OrderNotFound,
    OrderOutcomeUnknown,
    PermissionDenied,
)
from ...domain.keys import AccountKey, ConfirmationKey, OrderKey
from ...domain.models import Account, Order, Position
from ...domain.requests import OrderFilter, OrderRequest, PositionFilter
from ..base import BaseAdapter, Capabilities, Confirmation, Page, PlaceOutcome, WindowQuery
from ..pacing import PacingRules
from ..placement import find_placed, send_once
from ..runtime import Runtime
from . import parsing
from .client import DOCUMENTED_PACING, LemonClient
from .instruments import SymbolDirectory

__all__ = ["LemonAdapter", "page_for"]

MAX_PAGE = 100


def page_for(offset: int, limit: int, max_page: int = MAX_PAGE) -> tuple[int, int, int] | None:
    """The lemon ``(limit, page, skip)`` whose single page covers ``[offset, offset+limit)``, or
    ``None`` when no page size up to ``max_page`` does."""
    for size in range(max(limit, 1), max_page + 1):
        if offset // size == (offset + limit - 1) // size:
            return size, offset // size + 1, offset % size
    return None


class LemonAdapter(BaseAdapter):
    """Adapter for one lemon API key (``credentials.api_key``)."""

    broker = Broker.LEMON
    unique_client_ids = True  # lemon refuses a second order with an ``idempotency`` it holds (7 days)
    capabilities = Capabilities(max_expiry_days=30, fractional_quantities=False)

    def __init__(self, config: ConnectionConfig, runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        self.client = LemonClient(config, self.scheduler)
        self.symbols = SymbolDirectory(self.client)
        self._account_id: str | None = None
        self._account_lock = asyncio.Lock()

    def pacing_rules(self) -> PacingRules:
        """lemon.md §10 (100 requests a minute on average, bursts to 300) unless ``rate_limit`` is set."""
        return super().pacing_rules() if self.config.rate_limit is not None else DOCUMENTED_PACING

    async def close(self) -> None:
        await self.client.close()
        await super().close()

    def upstream_calls(self) -> int:
        return self.client.http.calls + self.client.data.calls

    # -- accounts -------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        """``GET account`` → one :class:`Account` (lemon has one account per API key)."""
        account = parsing.parse_account(self.connection, await self.client.get_account())
        self._account_id = account.account_number
        return [account]

    async def _check(self, account: AccountKey) -> str:
        """The key's account id; ``OrderNotFound`` when ``account`` is another one."""
        if self._account_id is None:
            async with self._account_lock:
                if self._account_id is None:
                    await self.fetch_accounts()
        if account.connection != self.connection or account.account_number != self._account_id:
            raise OrderNotFound(f"no lemon account {account.account_number}", connection=self.connection)
        assert self._account_id is not None
        return self._account_id

    # -- positions ------------------------------------------------------------------------
    async def fetch_positions(self, account: AccountKey, filter: PositionFilter | None = None) -> list[Position]:
        """Every position of the account (``GET positions``, all pages; ``isin`` pushed down)."""
        account_id = await self._check(account)
        params = [("isin", filter.isin.upper())] if filter and filter.isin else []
        now = datetime.now(UTC)
        items = await self.client.get_all("positions", params)
        positions = await self.symbols.complete([parsing.parse_position(self.connection, account_id, p, now)
                                                 for p in items])
        return [p for p in positions if filter is None or filter.matches(p)]

    async def fetch_positions_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        return await self._windows(queries, "positions", self._positions_window)

    async def _positions_window(self, q: WindowQuery) -> Page:
        flt: PositionFilter | None = q.filter
        if flt is not None and (flt.symbol or flt.min_quantity is not None or flt.max_quantity is not None):
            items = await self.fetch_positions(q.account, flt)
            return Page(items[q.offset:q.offset + q.limit], len(items))
        account_id = await self._check(q.account)
        params = [("isin", flt.isin.upper())] if flt and flt.isin else []
        now = datetime.now(UTC)
        window = page_for(q.offset, q.limit)
        if window is None:
            items = await self.fetch_positions(q.account, flt)
            return Page(items[q.offset:q.offset + q.limit], len(items))
        size, page, skip = window
        raw, total = await self.client.get_page("positions", params, limit=size, page=page)
        parsed = await self.symbols.complete([parsing.parse_position(self.connection, account_id, p, now) for p in raw])
        return Page(parsed[skip:skip + q.limit], total)

    # -- orders ---------------------------------------------------------------------------
    @staticmethod
    def _order_params(flt: OrderFilter | None) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        if flt is None:
            return params
        for status in sorted(flt.statuses, key=lambda s: s.value):
            params.extend(("status", word) for word in parsing.STATUS_QUERY.get(status, ()))
        if flt.side is not None:
            params.append(("side", flt.side.value))
        if flt.isin:
            params.append(("isin", flt.isin.upper()))
        if flt.created_after:
            params.append(("from", flt.created_after.astimezone(UTC).isoformat()))
        if flt.created_before:
            params.append(("to", flt.created_before.astimezone(UTC).isoformat()))
        return params

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        """Orders of the account, newest first (``GET orders``, all pages; status, side, isin,
        from/to pushed down, the rest applied locally)."""
        account_id = await self._check(account)
        items = await self.client.get_all("orders", self._order_params(filter))
        orders = await self.symbols.complete([parsing.parse_order(self.connection, account_id, o) for o in items])
        return [o for o in orders if filter is None or filter.matches(o)]

    async def fetch_orders_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        return await self._windows(queries, "orders", self._orders_window)

    async def _orders_window(self, q: WindowQuery) -> Page:
        flt: OrderFilter | None = q.filter
        window = page_for(q.offset, q.limit)
        if window is None or (flt is not None and flt.symbol):
            items = await self.fetch_orders(q.account, flt)
            return Page(items[q.offset:q.offset + q.limit], len(items))
        account_id = await self._check(q.account)
        size, page, skip = window
        raw, total = await self.client.get_page("orders", self._order_params(flt), limit=size, page=page)
        parsed = [parsing.parse_order(self.connection, account_id, o) for o in raw]
        return Page(await self.symbols.complete(parsed[skip:skip + q.limit]), total)

    async def fetch_order(self, key: OrderKey) -> Order:
        """``GET orders/{id}``; ``OrderNotFound`` for an unknown id or another account's."""
        account_id = await self._check(AccountKey(key.connection, key.account_number))
        order = parsing.parse_order(self.connection, account_id, await self.client.get_order(key.broker_order_id))
        return (await self.symbols.complete([order]))[0]

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """The order whose ``idempotency`` is ``client_order_id`` (lemon keeps them 7 days), searched
        with ``GET orders`` narrowed by the hint's ISIN and side, newest first, page by page until it
        is found (a reconciliation reads one page for a recent order, not the whole week's); only
        the order found is parsed."""
        account_id = await self._check(account)
        flt = OrderFilter(created_after=datetime.now(UTC) - timedelta(days=7),
                          isin=hint.instrument.isin if hint else None, side=hint.side if hint else None)

        def holds(item: dict[str, Any]) -> bool:
            return isinstance(item, dict) and item.get("idempotency") == client_order_id

        items = await self.client.get_all("orders", self._order_params(flt), until=holds)
        raw = next((item for item in items if holds(item)), None)
        if raw is None:
            return None
        return (await self.symbols.complete([parsing.parse_order(self.connection, account_id, raw)]))[0]

    # -- placement ------------------------------------------------------------------------
    def _order_body(self, request: OrderRequest) -> dict[str, Any]:
        isin = request.instrument.isin or request.instrument.broker_instrument_id
        if not isin:
            raise InvalidInput("lemon identifies instruments by ISIN", field="instrument.isin")
        if request.quantity != request.quantity.to_integral_value():
            raise InvalidInput("lemon trades whole shares only", field="quantity")
        body: dict[str, Any] = {"isin": isin.upper(), "side": request.side.value, "quantity": int(request.quantity),
                                "venue": "xmun", "idempotency": request.client_order_id}
        for name, value in (("limit_price", request.limit_price), ("stop_price", request.stop_price)):
            if value is not None:
                try:
                    body[name] = parsing.to_wire_money(value)
                except ValueError as exc:
                    raise InvalidInput(f"lemon prices have at most 4 decimal places: {exc}",
                                       field="limitPrice" if name == "limit_price" else "stopPrice") from None
        if request.expires_at is not None:
            body["expires_at"] = request.expires_at.astimezone(UTC).date().isoformat()
        elif request.type is not OrderType.MARKET:
            body["expires_at"] = "P30D" if request.time_in_force.value == "gtc" else "P0D"
        if request.notes:
            body["notes"] = request.notes
        return body

    async def create_order(self, request: OrderRequest) -> PlaceOutcome:
        """``POST orders`` then ``POST orders/{id}/activate``.

        Returns the order (re-read after activation) or a :class:`Confirmation` when activation
        needs a PIN. A ``POST orders`` whose answer is lost, or that lemon refuses because the
        ``idempotency`` is taken, is reconciled by that id (:mod:`..placement`). Raises
        ``InvalidInput``, ``InvalidOrder``, ``InsufficientFunds``, ``IdempotencyConflict`` (the client
        order id was used for another order) and ``OrderOutcomeUnknown`` (no order carries the id
        yet, or the order exists and its activation could not be confirmed).
        """
        assert request.account is not None
        account_id = await self._check(request.account)
        body = self._order_body(request)

        async def send() -> Order:
            try:
                return parsing.parse_order(self.connection, account_id, await self.client.post_orders(body))
            except IdempotencyConflict:
                return await self._taken(request)

        async def lookup() -> Order | None:
            assert request.account is not None
            return await self.fetch_order_by_client_id(request.account, request.client_order_id, request)

        created = await send_once(send, lookup, client_order_id=request.client_order_id,
                                  connection=self.connection, visibility=self.visibility)
        if not _same(created, request):
            raise IdempotencyConflict("the client order id was used for a different order", connection=self.connection)
        if created.status.value != "pending_activation":
            return created
        try:
            return await self._activate(created.key)
        except OrderOutcomeUnknown:
            raise
        except OperationFailed as exc:  # the order exists: never answer "nothing happened"
            raise OrderOutcomeUnknown(f"lemon order {created.key.broker_order_id} exists; its activation could not "
                                      f"be confirmed ({exc.message}): ask again with the same idempotencyKey",
                                      client_order_id=request.client_order_id, connection=self.connection) from exc

    async def _taken(self, request: OrderRequest) -> Order:
        """lemon refused ``POST orders`` because its ``idempotency`` is taken: the order that holds it
        (:func:`..placement.find_placed`); ``IdempotencyConflict`` when the orders could be read and
        none of those it may be carries it, ``OrderOutcomeUnknown`` when they could not be read."""
        assert request.account is not None
        account = request.account
        found, complete = await find_placed(
            lambda: self.fetch_order_by_client_id(account, request.client_order_id, request),
            visibility=self.visibility, what=request.client_order_id)
        if found is not None:
            return found
        if complete:
            raise IdempotencyConflict("the client order id was used for a different order", connection=self.connection)
        raise OrderOutcomeUnknown("lemon holds an order with this client order id; it could not be read",
                                  client_order_id=request.client_order_id, connection=self.connection)

    async def _activate(self, key: OrderKey, pin: str | None = None) -> PlaceOutcome:
        try:
            await self.client.post_orders_activate(key.broker_order_id, pin)
        except PermissionDenied as exc:
            if exc.broker_code == "pin_missing":
                return Confirmation(ConfirmationKey(self.connection, f"{key.account_number}:{key.broker_order_id}"),
                                    (exc.broker_message or "a PIN is needed to activate the order",),
                                    ("pin_missing",))
            raise
        except InvalidOrder as exc:
            if exc.broker_code != "order_not_inactive":  # activated by an earlier attempt: fine
                raise
        except OperationFailed:
            order = await self.fetch_order(key)  # read, then decide: never re-send blindly
            if order.status.value == "pending_activation":
                await self.client.post_orders_activate(key.broker_order_id, pin)
        return await self.fetch_order(key)

    async def confirm_order(self, key: ConfirmationKey, accept: bool, pin: str | None = None) -> PlaceOutcome | None:
        """Activate an order that waited for a PIN (``accept``), or cancel it (``not accept``)."""
        account_number, _, order_id = key.token.partition(":")
        order_key = OrderKey(self.connection, account_number, order_id)
        if not accept:
            await self.cancel_order(order_key)
            return None
        return await self._activate(order_key, pin)

    async def cancel_order(self, key: OrderKey) -> Order:
        """``DELETE orders/{id}``, then the order re-read (``PENDING_CANCEL`` or ``CANCELED``)."""
        await self.fetch_order(key)  # checks account and existence before writing
        await self.client.delete_order(key.broker_order_id)
        return await self.fetch_order(key)

    async def square_off_position(self, position: Position, quantity: Decimal, order_type: OrderType,
                                  limit_price: Decimal | None, client_order_id: str) -> PlaceOutcome:
        """The opposite order for ``quantity`` (lemon has no native square-off)."""
        from ...domain.enums import OrderSide
        from ...domain.requests import InstrumentRef

        request = OrderRequest(
            instrument=InstrumentRef(isin=position.instrument.isin),
            side=OrderSide.SELL if position.quantity > 0 else OrderSide.BUY,
            type=order_type, quantity=quantity, client_order_id=client_order_id,
            account=position.account_key, limit_price=limit_price,
        )
        return await self.create_order(request)


def _same(order: Order, request: OrderRequest) -> bool:
    """Whether an order found by client order id is the one ``request`` describes."""
    def amount(m: Any) -> Decimal | None:
        return None if m is None else m.amount

    return (order.instrument.isin == (request.instrument.isin or "").upper()
            and order.side is request.side
            and order.quantity == request.quantity
            and amount(order.limit_price) == request.limit_price
            and amount(order.stop_price) == request.stop_price)
