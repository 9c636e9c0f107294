"""The ETNA Trader adapter: build → call → parse for every BrokerAdapter verb.

Accounts are ``GET v1.0/users/{userId}/accounts`` (``@me`` unless the credential ``user_id`` is
set). Positions (by symbol) and orders (newest first: ``sortField=CreateDate&desc=true``) are read
with what the filter allows pushed down as an ETNA ``filter`` expression (:mod:`.filters`). A Relay
window whose filter ETNA applies entirely is read as the ETNA page(s) under it, with ETNA's
``TotalCount`` (:mod:`.windows`); otherwise the whole list is read page by page (page sizes 99 and
100, options ``positions_page_size`` / ``orders_page_size``), filtered locally and sliced. Orders
are sent with ``ClientId`` = the request's ``client_order_id``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ...config import ConnectionConfig
from ...domain.enums import Broker, ConnectionStatus, OrderSide, OrderType
from ...domain.errors import (
    AuthenticationError,
    BadResponse,
    GatewayError,
    InvalidInput,
    NotSupported,
)
from ...domain.keys import AccountKey, OrderKey
from ...domain.models import Account, Order, Position
from ...domain.requests import InstrumentRef, OrderFilter, OrderRequest, OrderUpdate, PositionFilter
from ..base import BaseAdapter, Capabilities, Page, PlaceOutcome, WindowQuery
from ..http import HttpResponse
from ..placement import send_once
from ..runtime import Runtime
from .builders import place_body, replace_body, square_off_body
from .client import EtnaClient
from .filters import date_literal, order_filter, position_filter, string_literal
from .parsing import (
    TIF_TO_WIRE,
    instrument_from_position,
    parse_account,
    parse_order,
    parse_position,
)
from .securities import SecurityMap
from .windows import ListSpec, read_all, read_window

log = logging.getLogger(__name__)

__all__ = ["EtnaAdapter"]


class EtnaAdapter(BaseAdapter):
    """ETNA Trader Web API. Credentials ``app_key``, ``username``, ``password`` (optional ``pin``,
    ``verification_code``, ``user_id``); options ``token_lifetime`` (s), ``positions_page_size``,
    ``orders_page_size``."""

    broker = Broker.ETNA
    #: seconds back a look-up by ``ClientId`` searches: beyond the idempotency keys' 24 h, with a margin
    CLIENT_ID_HORIZON = 2 * 86_400
    capabilities = Capabilities(modify_order=True, order_types=frozenset(OrderType), fractional_quantities=False)

    def __init__(self, config: ConnectionConfig, runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        self.client = EtnaClient(config, self.scheduler)
        self.securities = SecurityMap(self.client)
        self.user_id = config.credential("user_id") or "@me"
        positions_page = int(config.options.get("positions_page_size", 99))
        orders_page = int(config.options.get("orders_page_size", 100))
        self._positions = ListSpec(self.client.get_positions, positions_page, "Symbol", False)
        self._orders = ListSpec(self.client.get_orders, orders_page, "CreateDate", True)
        self._recent_orders = ListSpec(self.client.get_orders, orders_page, "Id", True)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Log in; a broker that is down or refuses leaves the adapter DOWN / UNAUTHENTICATED."""
        try:
            await self.client.tokens.ensure()
            self.status = ConnectionStatus.UP
        except AuthenticationError:
            self.status = ConnectionStatus.UNAUTHENTICATED
        except GatewayError:
            self.status = ConnectionStatus.DOWN

    async def close(self) -> None:
        await self.client.close()
        await super().close()

    def upstream_calls(self) -> int:
        return self.client.calls

    # -- reads ----------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        """The user's trading accounts (``GET v1.0/users/{userId}/accounts``), each with its cash
        from ``GET v1.0/accounts/{id}/info`` (one call per account, concurrently; an account whose
        balance cannot be read keeps ``cash`` null). Accounts are USD."""
        response = await self.client.get_user_accounts(self.user_id)
        if not isinstance(response.body, list):
            raise BadResponse("ETNA accounts answer is not an array", connection=self.connection)
        raws = [raw for raw in response.body if isinstance(raw, dict)]
        infos = await asyncio.gather(*(self.client.get_account_info(str(raw["Id"])) for raw in raws),
                                     return_exceptions=True)
        out = []
        for raw, info in zip(raws, infos, strict=True):
            if isinstance(info, BaseException) and not isinstance(info, GatewayError):
                raise info
            if isinstance(info, GatewayError):
                log.warning("ETNA account %s balance unreadable: %s", raw.get("Id"), info.message)
            out.append(parse_account(raw, self.connection, None if isinstance(info, GatewayError) else info.body))
        return out

    async def fetch_positions(self, account: AccountKey, filter: PositionFilter | None = None) -> list[Position]:
        """Positions of ``account`` by symbol (``GET v1.0/accounts/{id}/positions``, every page)."""
        push = position_filter(filter)
        if push.empty:
            return []
        raws = await read_all(self._positions, account.account_number, push.expression)
        positions = await self._parse_positions(account.account_number, raws)
        return [p for p in positions if filter is None or filter.matches(p)]

    async def _parse_positions(self, account_number: str, raws: list[dict[str, Any]]) -> list[Position]:
        """Positions with their securities looked up (``GET v1.0/equities/{id}``, once per security
        for the adapter's life), which add the exchange and ISIN positions lack."""
        now = datetime.now(UTC)
        for raw in raws:
            self.securities.learn(instrument_from_position(raw))
        await self.securities.resolve(str(raw["SecurityId"]) for raw in raws)
        return [parse_position(raw, self.connection, account_number, now,
                               self.securities.looked_up(str(raw["SecurityId"]))) for raw in raws]

    async def _parse_orders(self, account_number: str, raws: list[dict[str, Any]],
                            symbol: str | None = None) -> list[Order]:
        """Orders with their securities looked up; ``symbol`` (what ETNA matched ``Symbol =``
        against) stands in for a security whose look-up failed."""
        await self.securities.resolve(str(raw["SecurityId"]) for raw in raws)
        out = []
        for raw in raws:
            instrument = self.securities.get(str(raw["SecurityId"]))
            if instrument.symbol is None and symbol is not None:
                instrument = replace(instrument, symbol=symbol.upper())
            out.append(parse_order(raw, self.connection, account_number, instrument))
        return out

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        """Orders of ``account``, newest first (``GET v1.0/accounts/{id}/orders`` sorted by
        ``CreateDate`` descending, every page)."""
        push = order_filter(filter)
        if push.empty:
            return []
        raws = await read_all(self._orders, account.account_number, push.expression)
        orders = await self._parse_orders(account.account_number, raws, filter.symbol if filter else None)
        return [o for o in orders if filter is None or filter.matches(o)]

    # -- Relay windows --------------------------------------------------------------------
    async def fetch_positions_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        """Windows of position lists: one ETNA page per window when the filter is fully pushed
        down (``pageNumber`` / ``pageSize`` / ``TotalCount``), else the whole list sliced."""
        return await self._windows(queries, "positions", self._positions_window)

    async def fetch_orders_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        """Windows of order lists (newest first); see :meth:`fetch_positions_pages`."""
        return await self._windows(queries, "orders", self._orders_window)

    async def _positions_window(self, q: WindowQuery) -> Page:
        push = position_filter(q.filter)
        if push.empty:
            return Page([], 0)
        got = None
        if push.exact:
            got = await read_window(self._positions, q.account.account_number, push.expression, q.offset, q.limit)
        if got is None:
            items = await self.fetch_positions(q.account, q.filter)
            return Page(items[q.offset:q.offset + q.limit], len(items))
        raws, total = got
        return Page(await self._parse_positions(q.account.account_number, raws), total)

    async def _orders_window(self, q: WindowQuery) -> Page:
        flt: OrderFilter | None = q.filter
        push = order_filter(flt)
        if push.empty:
            return Page([], 0)
        got = None
        if push.exact:
            got = await read_window(self._orders, q.account.account_number, push.expression, q.offset, q.limit)
        if got is None:
            items = await self.fetch_orders(q.account, flt)
            return Page(items[q.offset:q.offset + q.limit], len(items))
        raws, total = got
        return Page(await self._parse_orders(q.account.account_number, raws, flt.symbol if flt else None), total)

    async def fetch_order(self, key: OrderKey) -> Order:
        """One order (``GET v1.0/accounts/{id}/orders/{orderId}``); OrderNotFound when unknown."""
        response = await self.client.get_order(key.account_number, key.broker_order_id)
        return (await self._parse_orders(key.account_number, [self._object(response)]))[0]

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """The order sent with ``ClientId`` = ``client_order_id``: newest ids first, created within
        :attr:`CLIENT_ID_HORIZON` and narrowed to the hint's symbol when there is one (ETNA has no
        filter on ``ClientId``); ``None`` when there is no such order."""
        since = datetime.now(UTC) - timedelta(seconds=self.CLIENT_ID_HORIZON)
        clauses = [f"CreateDate >= {date_literal(since)}"]  # older orders cannot carry a live key
        if hint is not None and hint.instrument.symbol:
            clauses.append(f"Symbol = {string_literal(hint.instrument.symbol)}")
        expression = " and ".join(clauses)

        def found(raw: dict[str, Any]) -> bool:
            return str(raw.get("ClientId")) == client_order_id

        raws = await read_all(self._recent_orders, account.account_number, expression, stop=found)
        match = [raw for raw in raws if found(raw)]
        if not match:
            return None
        return (await self._parse_orders(account.account_number, match[:1]))[0]

    # -- writes ---------------------------------------------------------------------------
    def _object(self, response: HttpResponse) -> dict[str, Any]:
        if not isinstance(response.body, dict):
            raise BadResponse("ETNA answered without an order resource", connection=self.connection)
        return response.body

    async def _place(self, account: AccountKey, body: dict[str, Any], client_order_id: str,
                     hint: OrderRequest | None) -> Order:
        """``POST …/orders`` once (:func:`..placement.send_once`): a failure after the request may
        have reached ETNA (timeout, reset, 5xx, an unreadable answer) is reconciled by ``ClientId``
        within the visibility delay: the order found is returned, else ``OrderOutcomeUnknown``."""
        async def send() -> Order:
            response = await self.client.post_orders(account.account_number, body)
            return (await self._parse_orders(account.account_number, [self._object(response)]))[0]

        async def lookup() -> Order | None:
            return await self.fetch_order_by_client_id(account, client_order_id, hint)

        return await send_once(send, lookup, client_order_id=client_order_id, connection=self.connection,
                               visibility=self.visibility)

    async def _symbol(self, request: OrderRequest) -> str:
        ref = request.instrument
        if ref.symbol:
            return ref.symbol
        if ref.broker_instrument_id:
            await self.securities.resolve([ref.broker_instrument_id])
            symbol = self.securities.get(ref.broker_instrument_id).symbol
            if symbol:
                return symbol
        raise InvalidInput("ETNA orders need a symbol or an ETNA SecurityId", field="instrument",
                           connection=self.connection)

    async def create_order(self, request: OrderRequest) -> PlaceOutcome:
        """Place an order (``POST v1.0/accounts/{id}/orders``); answers the order as ``PendingNew``.

        Raises InvalidOrder (422 validation), NotSupported (allocation groups), OrderOutcomeUnknown
        (the answer was lost and no order with the ClientId was found).
        """
        if request.account is None:
            raise NotSupported("ETNA has no allocation groups", connection=self.connection)
        body = place_body(request, await self._symbol(request))
        return await self._place(request.account, body, request.client_order_id, request)

    async def cancel_order(self, key: OrderKey) -> Order:
        """Cancel (``DELETE v1.0/accounts/{id}/orders/{orderId}`` → 204), then read the order back.

        Raises InvalidOrder when ETNA answers 409 (filled, cancelled already), OrderNotFound.
        """
        await self.client.delete_order(key.account_number, key.broker_order_id)
        return await self.fetch_order(key)

    async def modify_order(self, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        """Replace (``PUT v1.0/accounts/{id}/orders/{orderId}``) with the changed fields and the
        current values of the others. ETNA cannot change the time in force (NotSupported)."""
        current = self._object(await self.client.get_order(key.account_number, key.broker_order_id))
        if update.time_in_force is not None and TIF_TO_WIRE[update.time_in_force] != current.get("TimeInForce"):
            raise NotSupported("ETNA cannot change an order's time in force", connection=self.connection)
        body = replace_body(current, update)
        response = await self.client.put_order(key.account_number, key.broker_order_id, body)
        return (await self._parse_orders(key.account_number, [self._object(response)]))[0]

    async def square_off_position(self, position: Position, quantity: Decimal, order_type: OrderType,
                                  limit_price: Decimal | None, client_order_id: str) -> PlaceOutcome:
        """Close ``quantity`` of ``position`` with the opposite order: ``Sell`` for a long,
        ``BuyToCover`` for a short; day order."""
        if quantity <= 0 or quantity > abs(position.quantity):
            raise InvalidInput(f"quantity must be in (0, {abs(position.quantity)}]", field="quantity",
                               connection=self.connection)
        if order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidInput("square-off orders are MARKET or LIMIT", field="type", connection=self.connection)
        if order_type is OrderType.LIMIT and limit_price is None:
            raise InvalidInput("a LIMIT square-off needs a limit price", field="limitPrice", connection=self.connection)
        symbol = position.instrument.symbol
        if not symbol:
            raise InvalidInput("the position has no symbol", field="positionId", connection=self.connection)
        body = square_off_body(position, symbol, quantity, order_type, limit_price, client_order_id)
        hint = OrderRequest(instrument=InstrumentRef(symbol=symbol), side=OrderSide.SELL if position.quantity > 0
                            else OrderSide.BUY, type=order_type, quantity=quantity, client_order_id=client_order_id,
                            account=position.account_key)
        return await self._place(position.account_key, body, client_order_id, hint)
