"""The IBKR Client Portal adapter (Financial Advisor sessions included).

Every verb does build → call → parse. The Client Portal session is shared state: the selected
account, the reply chain of a pending order and the pacing limits belong to the session, not to a
request, so :class:`.session.SessionState` serialises what must not interleave (see there) and
:mod:`.pacing` keeps the gateway under IBKR's documented pacing.

Connection options: ``global_rate``, ``slow_interval``, ``tickle_interval_min`` (pacing, see
:mod:`.pacing`); ``tickle_interval`` seconds between keep-alive tickles (60); ``lease_seconds``
how long a pending reply question holds the session (30); ``orders_repoll_delay`` seconds before
re-reading an empty orders snapshot that may be cold (1.0); ``verify_tls`` (the CP gateway's certificate is
self-signed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
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
from ...domain.models import Account, AllocationGroup, Order, Position
from ...domain.requests import OrderFilter, OrderRequest, PositionFilter
from ..base import BaseAdapter, Capabilities
from ..http import HttpResponse
from .client import IbkrClient
from .instruments import InstrumentResolver
from .pacing import Pacing
from .parsing import (
    parse_account,
    parse_allocation_group,
    parse_live_order,
    parse_position,
)
from .session import SessionState
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
        self.session = SessionState(lease_seconds=float(opts.get("lease_seconds", 30.0)))
        self.instruments = InstrumentResolver(self.client)
        self.tickle_interval = float(opts.get("tickle_interval", 60.0))
        self.repoll_delay = float(opts.get("orders_repoll_delay", 1.0))
        self._tickler: asyncio.Task[None] | None = None

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
            auth = ((body or {}).get("iserver") or {}).get("authStatus") or {}
            self._authenticated(bool(auth.get("authenticated")))
        except AuthenticationError:
            pass  # _observe already recorded it
        except GatewayError as exc:
            log.warning("IBKR %s tickle failed: %s", self.connection, exc)
            if self.status is not ConnectionStatus.UNAUTHENTICATED:
                self.status = ConnectionStatus.DOWN

    def _observe(self, response: HttpResponse, error: GatewayError | None) -> None:
        """Every answer: a 401 means logged out; any success outside the session endpoints means in."""
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
        orders = [parse_live_order(self.connection, i, self.session.groups) for i in items]
        return [o for o in orders if filter is None or filter.matches(o)]

    # -- reads ----------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        """The master (ADVISOR_MASTER) and sub-accounts (ADVISOR_CLIENT) of an FA session, else the
        accounts as INDIVIDUAL. Calls ``iserver/accounts``, ``portfolio/accounts`` and, for an FA,
        ``portfolio/subaccounts``."""
        body = await self.client.accounts()
        self._learn(body)
        fa = bool((body.get("allowFeatures") or {}).get("allowFA"))
        main = await self.client.portfolio_accounts()
        subs = await self.client.portfolio_subaccounts() if fa else []
        out: dict[str, Account] = {}
        for item in main or []:
            acc = parse_account(self.connection, item, AccountKind.ADVISOR_MASTER if fa else AccountKind.INDIVIDUAL)
            out[acc.account_number] = acc
        for item in subs or []:
            acc = parse_account(self.connection, item, AccountKind.ADVISOR_CLIENT)
            out.setdefault(acc.account_number, acc)
        return list(out.values())

    async def fetch_allocation_groups(self) -> list[AllocationGroup]:
        """``iserver/account/allocation/group`` and one ``…/group/single`` per group."""
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
