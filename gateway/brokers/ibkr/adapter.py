"""The IBKR Client Portal adapter (Financial Advisor sessions included).

Every verb does build → call → parse. The Client Portal session is shared state: the selected
account, the reply chain of a pending order and the pacing limits belong to the session, not to a
request, so :class:`.session.SessionState` serialises what must not interleave (see there) and
:mod:`.pacing` keeps the gateway under IBKR's documented pacing.

Connection options: ``global_rate``, ``slow_interval``, ``tickle_interval_min`` (pacing, see
:mod:`.pacing`); ``tickle_interval`` seconds between keep-alive tickles (60); ``confirmation_ttl``
seconds a reply question may be confirmed (120); ``orders_repoll_delay`` seconds before re-reading
an empty orders snapshot that may be cold (1.0); ``reference_ttl`` seconds the account list
(``portfolio/accounts`` / ``subaccounts``, paced 1 per 5 s) and the allocation groups are kept (300);
``verify_tls`` (the CP gateway's certificate is self-signed); ``ws_url`` (default: the base URL's
``ws``), ``ws_retry`` seconds between socket attempts (5) and ``ws_silence`` seconds without a frame
before the socket counts as dead (35), see :mod:`.stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ...config import ConnectionConfig
from ...domain.enums import AccountKind, Broker, ConnectionStatus, OrderType
from ...domain.errors import (
    AuthenticationError,
    GatewayError,
    OrderNotFound,
)
from ...domain.keys import AccountKey, OrderKey
from ...domain.models import Account, AllocationGroup, Money, Order, Position
from ...domain.requests import OrderFilter, OrderRequest, PositionFilter
from ..base import BaseAdapter, Capabilities
from ..http import HttpResponse
from . import first_seen
from .cache import Shared
from .client import IbkrClient
from .instruments import InstrumentResolver
from .pacing import Pacing
from .parsing import (
    dec,
    parse_account,
    parse_allocation_group,
    parse_live_order,
    parse_position,
)
from .session import SessionState
from .stream import watch_orders, ws_url
from .writes import OrderWrites

__all__ = ["IbkrAdapter"]

log = logging.getLogger(__name__)
_SESSION_PATHS = ("/tickle", "/iserver/auth/status")


class IbkrAdapter(OrderWrites, BaseAdapter):
    """IBKR Client Portal Web API (``/v1/api/``); see the module docstring."""

    broker = Broker.IBKR
    capabilities = Capabilities(allocation_groups=True, modify_order=True,
                                order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP,
                                                       OrderType.STOP_LIMIT}))

    def __init__(self, config: ConnectionConfig) -> None:
        opts = config.options
        if opts.get("verify_tls") is False and config.verify_tls:
            config = config.model_copy(update={"verify_tls": False})
        super().__init__(config)
        pacing = Pacing(global_rate=float(opts.get("global_rate", config.rate_limit or 8.0)),
                        slow_interval=float(opts.get("slow_interval", 5.5)),
                        tickle_interval=float(opts.get("tickle_interval_min", 1.1)))
        self.client = IbkrClient(config, pacing, self._observe)
        self.session = SessionState(confirmation_ttl=float(opts.get("confirmation_ttl", 120.0)))
        ttl = float(opts.get("reference_ttl", 300.0))
        self._portfolio: Shared[list[tuple[AccountKind, dict[str, Any]]]] = Shared(self._load_portfolio, ttl)
        self._groups: Shared[list[AllocationGroup]] = Shared(self._load_groups, ttl)
        self._accounts: Shared[list[Account]] = Shared(self._load_accounts, 0)
        self.instruments = InstrumentResolver(self.client)
        self.tickle_interval = float(opts.get("tickle_interval", 60.0))
        self.repoll_delay = float(opts.get("orders_repoll_delay", 1.0))
        self._tickler: asyncio.Task[None] | None = None
        self.ws_url = str(opts.get("ws_url") or ws_url(config.base_url))
        self.ws_retry = float(opts.get("ws_retry", 5.0))
        self.ws_silence = float(opts.get("ws_silence", 35.0))
        self.ws_session: str | None = None  # the ``session`` of the last tickle: the socket's ``api`` cookie

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Check the session and start the keep-alive ``tickle`` task; never raises."""
        await self._tickle_once()
        self._tickler = asyncio.create_task(self._tickle_forever(), name=f"ibkr-tickle-{self.connection}")

    async def close(self) -> None:
        if self._tickler is not None:
            self._tickler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tickler
            self._tickler = None
        await self.client.close()

    def upstream_calls(self) -> int:
        return self.client.calls

    async def _tickle_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tickle_interval)
            await self._tickle_once()

    async def _tickle_once(self) -> None:
        try:
            body = await self.client.tickle()
            if isinstance(body, dict) and body.get("session"):
                self.ws_session = str(body["session"])
            auth = ((body or {}).get("iserver") or {}).get("authStatus") or {}
            self._authenticated(bool(auth.get("authenticated")))
        except AuthenticationError:
            pass  # _observe already recorded it
        except GatewayError as exc:
            log.warning("IBKR %s tickle failed: %s", self.connection, exc)
            if self.status is not ConnectionStatus.UNAUTHENTICATED:
                self.status = ConnectionStatus.DOWN

    def _observe(self, response: HttpResponse, error: GatewayError | None) -> None:
        """Every answer: a 401 means logged out; any success outside the session endpoints means in.
        Each answer also moves ``session.seq`` (a pending reply question may be void now)."""
        self.session.seq += 1
        if isinstance(error, AuthenticationError):
            self._authenticated(False)
        elif response.status < 400 and not response.url.split("?", 1)[0].endswith(_SESSION_PATHS):
            self._authenticated(True)

    def _authenticated(self, ok: bool) -> None:
        if not ok:
            if self.status is not ConnectionStatus.UNAUTHENTICATED:
                log.warning("IBKR %s: brokerage session is not authenticated", self.connection)
            self.status = ConnectionStatus.UNAUTHENTICATED
            self.session.forget()
        elif self.status is not ConnectionStatus.UP:
            self.status = ConnectionStatus.UP

    async def _ensure_authenticated(self) -> None:
        """Refuse mutations while logged out (re-checked with ``iserver/auth/status`` first)."""
        if self.status is not ConnectionStatus.UNAUTHENTICATED:
            return
        body = await self.client.auth_status()
        self._authenticated(bool((body or {}).get("authenticated")))
        if self.status is ConnectionStatus.UNAUTHENTICATED:
            raise AuthenticationError("the IBKR brokerage session is logged out; log in to the Client Portal gateway",
                                      connection=self.connection)

    # -- the critical section (call with session.lock held) -------------------------------
    async def _preflight(self) -> None:
        if self.session.preflight:
            return
        body = await self.client.accounts()
        self._learn(body)
        self.session.selected = body.get("selectedAccount")
        self.session.preflight = True

    def _learn(self, body: dict[str, Any]) -> None:
        self.session.groups = frozenset(g for g in body.get("groups") or [] if g != "All")
        props = body.get("acctProps") or {}
        self.session.master = next((a for a, p in props.items() if p.get("hasChildAccounts")), self.session.master)

    async def _select(self, account: str) -> None:
        await self._preflight()
        if self.session.selected == account:
            return
        self.session.selected = None  # unknown until IBKR confirms
        await self.client.switch_account(account)
        self.session.selected = account
        self.session.switches += 1

    async def _live_items(self, account: str) -> list[dict[str, Any]]:
        """Switch to ``account`` and read its live orders; an empty snapshot that may be a cold one
        (first after login, or ``snapshot: false``) is re-read after re-validating the session, and
        items of another account (someone switched the session under us) are never returned as this
        account's."""
        try:
            await self._select(account)
            body = await self.client.live_orders()
            suspect = not body.get("orders") and (not self.session.primed or body.get("snapshot") is False)
            for _ in range(2):
                if not suspect:
                    break
                # the first snapshot(s) after a login are empty, and a session re-established behind
                # our back forgets the pre-flight and the selection: re-validate, then read again
                self.session.preflight = False
                await self._select(account)
                await asyncio.sleep(self.repoll_delay)
                body = await self.client.live_orders()
                suspect = not body.get("orders") and body.get("snapshot") is False
            self.session.primed = True
            items = [i for i in body.get("orders") or [] if isinstance(i, dict)]
            if any(str(i.get("acct")) != account for i in items):
                log.warning("IBKR %s: another account's orders in %s's snapshot; re-selecting",
                            self.connection, account)
                self.session.selected = None
                await self._select(account)
                body = await self.client.live_orders()
                items = [i for i in body.get("orders") or [] if isinstance(i, dict) and str(i.get("acct")) == account]
            return items
        except GatewayError:
            self.session.selected = None  # re-validate on the next call
            raise

    def _orders(self, items: list[dict[str, Any]], filter: OrderFilter | None) -> list[Order]:
        orders = first_seen.stamp(parse_live_order(self.connection, i, self.session.groups) for i in items)
        return [o for o in orders if filter is None or filter.matches(o)]

    # -- reads ----------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        """The master (ADVISOR_MASTER) and sub-accounts (ADVISOR_CLIENT) of an FA session, else the
        accounts as INDIVIDUAL; concurrent callers share one load.

        Every load calls ``iserver/accounts`` (the session check: ``AuthenticationError`` while
        logged out) and, for an FA, ``iserver/account/allocation/accounts`` (one call for every
        sub-account's ``AvailableEquity``, which becomes ``cash``; the master's cash is unknown).
        ``portfolio/accounts`` / ``portfolio/subaccounts`` (names, currencies) and the allocation
        groups (``allocation_group_names``) are kept ``reference_ttl`` seconds."""
        return list(await self._accounts.get())

    async def _load_accounts(self) -> list[Account]:
        body = await self.client.accounts()
        self._learn(body)
        fa = bool((body.get("allowFeatures") or {}).get("allowFA"))
        listed = {str(a) for a in body.get("accounts") or []}
        equity: dict[str, Any] = {}
        if fa:
            allocatable = await self.client.allocatable_accounts()
            for item in (allocatable or {}).get("accounts") or []:
                values = {d.get("key"): d.get("value") for d in item.get("data") or [] if isinstance(d, dict)}
                equity[str(item.get("name"))] = values.get("AvailableEquity")
        portfolio = await self._portfolio.get()
        groups = await self._groups.get() if fa else []
        out: dict[str, Account] = {}
        for kind, item in portfolio:
            if not fa:
                kind = AccountKind.INDIVIDUAL
            acc = parse_account(self.connection, item, kind)
            if listed and acc.account_number not in listed or acc.account_number in out:
                continue
            names = tuple(g.key.name for g in groups if any(m.account == acc.key for m in g.members))
            cash = dec(equity.get(acc.account_number))
            acc.allocation_group_names = names
            acc.cash = Money(cash, acc.base_currency) if cash is not None and acc.base_currency else None
            out[acc.account_number] = acc
        return list(out.values())

    async def _load_portfolio(self) -> list[tuple[AccountKind, dict[str, Any]]]:
        """``portfolio/accounts`` then, for an advisor, ``portfolio/subaccounts`` (both 1 per 5 s)."""
        main = await self.client.portfolio_accounts() or []
        out = [(AccountKind.ADVISOR_MASTER, i) for i in main if isinstance(i, dict)]
        if self.session.master is not None:
            subs = await self.client.portfolio_subaccounts() or []
            out.extend((AccountKind.ADVISOR_CLIENT, i) for i in subs if isinstance(i, dict))
        return out

    async def fetch_allocation_groups(self) -> list[AllocationGroup]:
        """``iserver/account/allocation/group`` and one ``…/group/single`` per group, kept
        ``reference_ttl`` seconds (groups are configuration); ``master_account`` is the FA master.
        Raises ``AuthenticationError`` while the session is known to be logged out."""
        if self.status is ConnectionStatus.UNAUTHENTICATED:
            await self._ensure_authenticated()
        return list(await self._groups.get())

    async def _load_groups(self) -> list[AllocationGroup]:
        listing = await self.client.allocation_groups()
        names = [str(g["name"]) for g in (listing or {}).get("data") or [] if isinstance(g, dict) and "name" in g]
        if self.session.master is None:
            self._learn(await self.client.accounts())
        bodies = await asyncio.gather(*(self.client.allocation_group(n) for n in names))
        return [parse_allocation_group(self.connection, b, self.session.master) for b in bodies]

    async def fetch_positions(self, account: AccountKey, filter: PositionFilter | None = None) -> list[Position]:
        """``portfolio/{acct}/positions/{page}`` from page 0 until a page holds fewer than 100."""
        as_of = datetime.now(UTC)
        out: list[Position] = []
        page = 0
        while True:
            items = await self.client.positions(account.account_number, page) or []
            out.extend(parse_position(self.connection, account.account_number, i, as_of) for i in items)
            if len(items) < 100:
                break
            page += 1
        return [p for p in out if filter is None or filter.matches(p)]

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        """Live orders of ``account`` (switch, then ``GET iserver/account/orders``, under the lock).
        Filters apply locally: IBKR's ``filters`` are known to return incomplete sets."""
        async with self.session.lock:
            items = await self._live_items(account.account_number)
        return self._orders(items, filter)

    async def fetch_orders_many(self, accounts: Sequence[AccountKey], filter: OrderFilter | None = None
                                ) -> dict[AccountKey, list[Order] | GatewayError]:
        """Each account selected once, starting with the one already selected."""
        selected = self.session.selected
        ordered = sorted(dict.fromkeys(accounts), key=lambda a: a.account_number != selected)
        out: dict[AccountKey, list[Order] | GatewayError] = {}
        for account in ordered:
            try:
                out[account] = await self.fetch_orders(account, filter)
            except GatewayError as exc:
                out[account] = exc
        return {a: out[a] for a in accounts}

    async def fetch_order(self, key: OrderKey) -> Order:
        for order in await self.fetch_orders(AccountKey(key.connection, key.account_number)):
            if order.key.broker_order_id == key.broker_order_id:
                return order
        raise OrderNotFound(f"IBKR order {key.broker_order_id} not found in {key.account_number}",
                            connection=self.connection)

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """Searches the live orders of ``account`` (of the master for an allocation-group ``hint``)."""
        number = account.account_number
        if hint is not None and hint.allocation_group is not None:
            number = self.session.master or await self._master()
        async with self.session.lock:
            return await self._find_by_coid(number, client_order_id)

    async def _find_by_coid(self, account: str, client_order_id: str) -> Order | None:
        for order in self._orders(await self._live_items(account), None):
            if order.client_order_id == client_order_id:
                return order
        return None

    # -- streams --------------------------------------------------------------------------
    def watch_orders(self, account: AccountKey) -> AsyncIterator[Order]:
        """Orders of ``account`` as they change, over the CP WebSocket (``sor``), with REST
        ``fetch_orders`` reads while the socket is down; never ends by itself (see :mod:`.stream`)."""
        return watch_orders(self, account)
