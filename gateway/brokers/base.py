"""The adapter contract: what every broker package implements.

Verbs follow ccxt: ``fetch_*`` read, ``create_order`` / ``cancel_order`` / ``modify_order`` write,
``watch_*`` stream. Every method does build → call → parse. Reads raise ``OperationFailed`` leaves
when the broker cannot be reached and ``BrokerError`` leaves when it refuses; writes never retry.

Batch reads (``fetch_*_many``) are what the per-request loaders call: one call per connection where
the broker can batch, else one per account run concurrently. Their results map each key to either a
value or the exception for that key, so that one failing account spoils nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from ..config import ConnectionConfig
from ..domain.enums import Broker, ConnectionStatus, OrderStatus, OrderType, Product
from ..domain.errors import GatewayError, NotSupported
from ..domain.keys import AccountKey, AllocationGroupKey, ConfirmationKey, OrderKey, PositionKey
from ..domain.models import Account, AllocationGroup, Order, Position
from ..domain.requests import OrderFilter, OrderRequest, OrderUpdate, PositionFilter
from . import budget
from .breaker import ConnectionBreaker
from .pacing import MemoryWindows, PacingRules, RedisWindows
from .runtime import Runtime, session_name
from .scheduler import SessionScheduler
from .snapshots import SnapshotStore

__all__ = ["BaseAdapter", "Capabilities", "Confirmation", "IsinResolver", "Page", "PlaceOutcome", "WindowQuery"]


@runtime_checkable
class IsinResolver(Protocol):
    """Looks up which broker instrument ids an ISIN names, for a broker whose positions and orders
    carry no ISIN (IBKR: conids through ``iserver/secdef/search``)."""

    async def ids_for_isin(self, isin: str) -> frozenset[str]:
        """The broker's instrument ids for ``isin`` (empty when the broker knows none)."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a broker supports; the GraphQL layer answers ``NotSupported`` for the rest."""

    allocation_groups: bool = False
    modify_order: bool = False
    convert_position: bool = False
    native_square_off: bool = False
    order_types: frozenset[OrderType] = frozenset(OrderType)
    products: frozenset[Product] = frozenset()
    fractional_quantities: bool = False
    max_expiry_days: int | None = None


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The broker wants an answer before the order exists (IBKR reply questions, a lemon PIN).

    ``key`` is what ``confirm_order`` takes back; ``messages`` / ``message_ids`` are the broker's.
    """

    key: ConfirmationKey
    messages: tuple[str, ...]
    message_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


PlaceOutcome = Order | Confirmation


@dataclass(frozen=True, slots=True)
class WindowQuery:
    """One account's list, filtered, from ``offset`` for ``limit`` items (a Relay page)."""

    account: AccountKey
    filter: Any = None  # PositionFilter | OrderFilter | None
    offset: int = 0
    limit: int = 100
    max_age: float | None = None  # seconds; None = the connection's default for the resource
    total: bool = True  # the exact list size is wanted (``totalCount`` selected); False: only the window


@dataclass(frozen=True, slots=True)
class Page:
    """A window of a list and the list's total size after filtering."""

    items: list[Any]
    total: int


class BaseAdapter:
    """Base class of the broker adapters: defaults that answer ``NotSupported`` and batch helpers.

    Subclasses set ``broker`` and ``capabilities`` and implement the verbs their broker has.
    """

    broker: Broker
    capabilities = Capabilities()
    #: default ``maxAge`` (seconds) per resource where the broker paces the endpoint behind it
    default_max_age: dict[str, float] = {}

    def __init__(self, config: ConnectionConfig, runtime: Runtime | None = None) -> None:
        self.config = config
        self.connection = config.name
        self.status = ConnectionStatus.UP
        self.runtime = runtime or Runtime()
        self.session_name = session_name(config)
        rules = self.pacing_rules()
        windows = (RedisWindows(rules, self.runtime.redis, self.session_name) if self.runtime.redis is not None
                   else MemoryWindows(rules))
        breaker = ConnectionBreaker(self.connection, config.breaker_threshold, config.breaker_reset,
                                    metrics=self.runtime.metrics)
        self.scheduler = SessionScheduler(self.connection, rules, windows, metrics=self.runtime.metrics,
                                          breaker=breaker)
        self.snapshots = SnapshotStore(self.connection, metrics=self.runtime.metrics)

    def pacing_rules(self) -> PacingRules:
        """The session's pacing windows: ``rate_limit`` / ``rate_burst`` of the configuration, else
        :attr:`default_rate` (the broker's documented limit, requests/s and burst)."""
        if self.config.rate_limit is not None:
            return PacingRules.from_rate(self.config.rate_limit, self.config.rate_burst)
        rate, burst = self.default_rate or (None, None)
        return PacingRules.from_rate(rate, self.config.rate_burst or burst)

    #: the broker's documented rate limit ``(requests per second, burst)``, if any
    default_rate: tuple[float, int] | None = None

    def max_age(self, resource: str) -> float:
        """The ``maxAge`` a read of ``resource`` accepts: the caller's (:data:`.budget.max_age`), else
        the connection's ``max_age`` setting, else the adapter's default (the broker's pacing window
        for the endpoint behind it), else 0."""
        requested = budget.max_age.get()
        if requested is not None:
            return requested
        return float(self.config.max_age.get(resource, self.default_max_age.get(resource, 0.0)))  # type: ignore[call-overload]

    async def snapshot(self, key: tuple[Any, ...], load: Any) -> Any:
        """``load()``'s value through the connection's snapshots (:mod:`.snapshots`), as old as
        :meth:`max_age` of the key's resource allows."""
        return (await self.snapshots.read(key, self.max_age(str(key[0])), load)).value

    #: whether :meth:`read_account_list` carries the balances too (one request answers both)
    balances_in_list = True

    async def read_account_list(self) -> list[Account]:
        """The accounts without their balances (``cash`` may be ``None``), for fields that need no
        balance (ids, names, kinds, currencies, the session check). The default reads
        :meth:`read_accounts` (brokers that answer both in one request); IBKR overrides it to skip the
        balance requests."""
        return await self.read_accounts()

    async def read_accounts(self) -> list[Account]:
        """:meth:`fetch_accounts` through the ``balances`` snapshot (accounts carry their cash);
        every account's ``as_of`` says when it was read."""
        return list(await self.snapshot(("balances", None), self.fetch_accounts))

    def record_orders(self, orders: Sequence[Order], *, changed: bool = True) -> None:
        """Orders the gateway learned of outside a read (its own writes, the watchers): the list
        snapshot ``("orders", account)`` takes each in place; when ``changed``, the account's other
        order snapshots are dropped (and no read begun before is kept), and its positions and
        balances too when an order filled."""
        for order in orders:
            targets = [order.account_key]
            if order.allocation_group is not None:
                targets.append(AccountKey(self.connection, order.allocation_group.name))
            filled = order.filled_quantity > 0 or order.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
            for account in targets:
                listed = ("orders", account)
                self.snapshots.update(listed, lambda items, o=order: _upsert(items, o))
                if changed:
                    dropped = ("orders", "positions", "balances") if filled else ("orders",)
                    self.snapshots.invalidate(account, dropped, keep=listed)
            if changed and filled:
                self.snapshots.invalidate(None, ("balances",))

    # -- life cycle -----------------------------------------------------------------------
    def claim(self) -> None:
        """Claim the broker login for this process where it must not be shared without Redis; the
        default claims nothing. Raises ``LoginInUse``."""

    async def start(self) -> None:
        """Open sessions, log in, start keep-alives. Must not raise when the broker is down."""

    async def close(self) -> None:
        """Close sessions and stop background tasks (subclasses call this last)."""
        await self.scheduler.close()
        self.snapshots.clear()

    def upstream_calls(self) -> int:
        """How many HTTP requests this adapter has sent (for diagnostics)."""
        return 0

    # -- reads ----------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        raise NotImplementedError

    async def fetch_allocation_groups(self) -> list[AllocationGroup]:
        return []

    async def fetch_positions(self, account: AccountKey, filter: PositionFilter | None = None) -> list[Position]:
        raise NotImplementedError

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        raise NotImplementedError

    async def fetch_order(self, key: OrderKey) -> Order:
        raise NotImplementedError

    async def fetch_group_orders(self, group: AllocationGroupKey, filter: OrderFilter | None = None) -> list[Order]:
        """Orders placed for allocation group ``group`` as a whole, newest first."""
        raise NotSupported(f"{self.broker.name} has no allocation groups", connection=self.connection)

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """The order sent with ``client_order_id``, or ``None``; ``hint`` narrows the search."""
        for order in await self.fetch_orders(account):
            if order.client_order_id == client_order_id:
                return order
        return None

    #: whether the broker itself refuses a second order with a client order id it holds (lemon
    #: ``order_idempotency_violation``, IBKR "already registered"); where it does not (ETNA, Alice
    #: Blue), a keyed placement looks its client order id up before sending (:meth:`fetch_placed`)
    unique_client_ids: bool = False
    #: seconds a new order may take to show in the broker's order list (option ``visibility_delay``)
    default_visibility: float = 1.0

    @property
    def visibility(self) -> float:
        """How long a reconciliation looks for an order (:mod:`.placement`): the connection option
        ``visibility_delay`` (seconds), else :attr:`default_visibility`."""
        return float(self.config.options.get("visibility_delay", self.default_visibility))

    async def fetch_placed(self, request: OrderRequest) -> Order | None:
        """The order ``request`` placed, looked up by its ``client_order_id`` (a fresh read), or
        ``None``; for an allocation-group order the adapter overrides it. Raises ``OperationFailed``
        when the broker's order list cannot be read."""
        if request.account is None:
            return None
        with budget.fresh():
            return await self.fetch_order_by_client_id(request.account, request.client_order_id, request)

    async def fetch_positions_many(self, accounts: Sequence[AccountKey], filter: PositionFilter | None = None
                                   ) -> dict[AccountKey, list[Position] | GatewayError]:
        return await self._per_account(accounts, lambda a: self.fetch_positions(a, filter))

    async def fetch_orders_many(self, accounts: Sequence[AccountKey], filter: OrderFilter | None = None
                                ) -> dict[AccountKey, list[Order] | GatewayError]:
        return await self._per_account(accounts, lambda a: self.fetch_orders(a, filter))

    async def fetch_positions_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        """Windows of position lists. The default reads whole lists (one ``fetch_positions_many`` per
        distinct filter), filters locally and slices; a broker that pages natively overrides it.
        An ``isin`` filter on a broker with an :meth:`isin_resolver` matches through the ids it
        resolves the ISIN to (see :meth:`_resolve_isins`)."""
        return await self._isin_pages(queries, self.fetch_positions_many)

    async def fetch_orders_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        """Windows of order lists; see :meth:`fetch_positions_pages`."""
        return await self._isin_pages(queries, self.fetch_orders_many)

    def isin_resolver(self) -> IsinResolver | None:
        """How this adapter resolves an ISIN to its instrument ids where its positions and orders
        carry no ISIN: its ``instruments`` attribute when that is an :class:`IsinResolver` (IBKR),
        else ``None`` (the broker reports ISINs, and a filter compares them)."""
        candidate = getattr(self, "instruments", None)
        return candidate if isinstance(candidate, IsinResolver) else None

    async def _resolve_isins(self, queries: Sequence[WindowQuery]) -> list[WindowQuery | GatewayError]:
        """``queries`` with each ``isin`` filter given the instrument ids the ISIN resolves to (one
        look-up per distinct ISIN); a look-up that fails stands in for its queries' answers."""
        resolver = self.isin_resolver()
        isins = sorted({str(q.filter.isin) for q in queries if getattr(q.filter, "isin", None)})
        if resolver is None or not isins:
            return list(queries)
        found = await asyncio.gather(*(resolver.ids_for_isin(i) for i in isins), return_exceptions=True)
        for result in found:
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                raise result
        by_isin = dict(zip(isins, found, strict=True))
        out: list[WindowQuery | GatewayError] = []
        for q in queries:
            isin = getattr(q.filter, "isin", None)
            ids = by_isin.get(str(isin)) if isin else None
            if isinstance(ids, GatewayError):
                out.append(ids)
            elif isinstance(ids, frozenset):
                out.append(replace(q, filter=replace(q.filter, instrument_ids=ids)))
            else:
                out.append(q)
        return out

    async def _isin_pages(self, queries: Sequence[WindowQuery], fetch_many: Any) -> list[Page | GatewayError]:
        resolved = await self._resolve_isins(queries)
        asked = [q for q in resolved if isinstance(q, WindowQuery)]
        pages = iter(await self._pages(asked, fetch_many) if asked else [])
        out: list[Page | GatewayError] = []
        for q in resolved:
            if not isinstance(q, WindowQuery):
                out.append(q)
                continue
            page = next(pages)
            isin = getattr(q.filter, "isin", None)
            if isin and isinstance(page, Page):
                for item in page.items:  # the ISIN the caller named, on holdings the broker gave none
                    if item.instrument.isin is None:
                        item.instrument = replace(item.instrument, isin=str(isin).upper())
            out.append(page)
        return out

    async def _pages(self, queries: Sequence[WindowQuery], fetch_many: Any) -> list[Page | GatewayError]:
        by_filter: dict[Any, list[AccountKey]] = {}
        for q in queries:
            accounts = by_filter.setdefault(q.filter, [])
            if q.account not in accounts:
                accounts.append(q.account)
        lists: dict[tuple[Any, AccountKey], Any] = {}
        results = await asyncio.gather(*(fetch_many(accounts, flt) for flt, accounts in by_filter.items()))
        for (flt, _), result in zip(by_filter.items(), results, strict=True):
            for account, value in result.items():
                lists[(flt, account)] = value
        out: list[Page | GatewayError] = []
        for q in queries:
            value = lists[(q.filter, q.account)]
            if isinstance(value, GatewayError):
                out.append(value)
                continue
            items = [x for x in value if q.filter is None or q.filter.matches(x)]
            out.append(Page(items[q.offset:q.offset + q.limit], len(items)))
        return out

    async def _windows(self, queries: Sequence[WindowQuery], resource: str, one: Any) -> list[Page | GatewayError]:
        """``one(query)`` for each query, concurrently, each through the snapshot of its window
        (``(resource, account, filter, offset, limit)``); a failing window spoils nothing else."""
        results = await asyncio.gather(*(self.snapshot((resource, q.account, q.filter, q.offset, q.limit),
                                                       lambda q=q: one(q)) for q in queries), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                raise result
        return list(results)

    async def _per_account(self, accounts: Sequence[AccountKey], call: Any) -> dict[AccountKey, Any]:
        results = await asyncio.gather(*(call(a) for a in accounts), return_exceptions=True)
        out: dict[AccountKey, Any] = {}
        for account, result in zip(accounts, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                raise result
            out[account] = result
        return out

    # -- writes ---------------------------------------------------------------------------
    async def create_order(self, request: OrderRequest) -> PlaceOutcome:
        raise NotSupported(f"{self.broker.name} orders are not supported", connection=self.connection)

    async def confirm_order(self, key: ConfirmationKey, accept: bool, pin: str | None = None) -> PlaceOutcome | None:
        """Answer a :class:`Confirmation`; ``None`` when declined (nothing placed)."""
        raise NotSupported(f"{self.broker.name} has no order confirmations", connection=self.connection)

    async def cancel_order(self, key: OrderKey) -> Order:
        raise NotSupported(f"{self.broker.name} cannot cancel orders", connection=self.connection)

    async def modify_order(self, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        raise NotSupported(f"{self.broker.name} cannot modify orders", connection=self.connection)

    async def square_off_position(self, position: Position, quantity: Decimal, order_type: OrderType,
                                  limit_price: Decimal | None, client_order_id: str) -> PlaceOutcome:
        """Close ``quantity`` of ``position`` (the broker's own square-off where it has one)."""
        raise NotSupported(f"{self.broker.name} cannot square off positions", connection=self.connection)

    async def convert_position(self, position: Position, to_product: Product, quantity: Decimal) -> Position:
        raise NotSupported(f"{self.broker.name} has no position conversion", connection=self.connection)

    # -- streams --------------------------------------------------------------------------
    def watch_orders(self, account: AccountKey) -> AsyncIterator[Order]:
        raise NotSupported(f"{self.broker.name} has no order stream", connection=self.connection)

    def position_key(self, account: AccountKey, instrument_id: str, product: str = "") -> PositionKey:
        return PositionKey(self.connection, account.account_number, instrument_id, product)


def _upsert(items: Any, order: Order) -> Any:
    """``items`` (a snapshot's list of orders) with ``order`` replacing its older self, or first."""
    if not isinstance(items, list):
        return items
    out = [order if o.key == order.key else o for o in items]
    if not any(o.key == order.key for o in items):
        out.insert(0, order)
    return out
