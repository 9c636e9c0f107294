"""The IBKR Client Portal adapter (Financial Advisor sessions included).

Every verb does build → call → parse. The Client Portal session is shared state: the selected
account, the reply chain of a pending order and the pacing limits belong to the session, not to a
request. The connection's scheduler (:mod:`..scheduler`) keeps every call under IBKR's documented
pacing (:mod:`.pacing`), writes ahead of reads; its critical section (:mod:`..section`, shared by the
replicas through Redis when configured) serialises a switch with the calls that need the selection
(:mod:`.session` says how); live orders, positions and balances are read through the connection's
snapshots (:mod:`..snapshots`), so that concurrent identical reads cost one call and a read may be
served from a snapshot as old as its ``maxAge`` (live orders: one pacing window by default).

Connection options: ``global_rate``, ``slow_interval``, ``tickle_interval_min`` (pacing, see
:mod:`.pacing`); ``tickle_interval`` seconds between keep-alive tickles (60); ``confirmation_ttl``
seconds a reply question may be confirmed (120); ``orders_repoll_delay`` seconds before re-reading
an empty orders snapshot that may be cold (1.0); ``reference_ttl`` seconds the account list
(``portfolio/accounts`` / ``subaccounts``, paced 1 per 5 s) and the allocation groups are kept (300);
``lease_ttl`` seconds of the critical section's Redis lease (5); ``session`` a name for the login
that every replica shares (default: derived from base URL and credentials); ``verify_tls`` (the CP
gateway's certificate is self-signed); ``ws_url`` (default: the base URL's ``ws``), ``ws_retry``
seconds between socket attempts (5) and ``ws_silence`` seconds without a frame before the socket
counts as dead (35), see :mod:`.stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ...config import ConnectionConfig
from ...domain.enums import AccountKind, Broker, ConnectionStatus, OrderType
from ...domain.errors import (
    AuthenticationError,
    BadResponse,
    BrokerNotAvailable,
    CircuitOpen,
    GatewayError,
    OrderNotFound,
    RateLimitExceeded,
    RequestTimeout,
)
from ...domain.keys import AccountKey, AllocationGroupKey, OrderKey
from ...domain.models import Account, AllocationGroup, Money, Order, Position
from ...domain.requests import OrderFilter, OrderRequest, PositionFilter
from .. import budget
from ..base import BaseAdapter, Capabilities, Page, WindowQuery
from ..http import HttpResponse
from ..pacing import PacingRules
from ..runtime import Runtime
from ..section import Held, RedisLease, SessionSection
from . import first_seen
from .cache import Shared
from .claim import LoginClaim
from .client import IbkrClient
from .confirmations import ConfirmationStore, RedisConfirmationStore
from .instruments import InstrumentResolver
from .pacing import ibkr_pacing
from .parsing import (
    dec,
    parse_account,
    parse_allocation_group,
    parse_ledger_cash,
    parse_live_order,
    parse_position,
)
from .session import SessionState
from .stream import watch_orders, ws_url
from .writes import OrderWrites

__all__ = ["IbkrAdapter"]

log = logging.getLogger(__name__)
_SESSION_PATHS = ("/tickle", "/iserver/auth/status")
SWITCH = ("POST", "iserver/account")
LIVE_ORDERS = ("GET", "iserver/account/orders")
PREFLIGHT = ("GET", "iserver/accounts")


class IbkrAdapter(OrderWrites, BaseAdapter):
    """IBKR Client Portal Web API (``/v1/api/``); see the module docstring."""

    broker = Broker.IBKR
    unique_client_ids = True  # IBKR refuses a cOID it holds ("… already registered")
    capabilities = Capabilities(allocation_groups=True, modify_order=True,
                                order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP,
                                                       OrderType.STOP_LIMIT}))

    def __init__(self, config: ConnectionConfig, runtime: Runtime | None = None) -> None:
        opts = config.options
        if opts.get("verify_tls") is False and config.verify_tls:
            config = config.model_copy(update={"verify_tls": False})
        self.slow_interval = float(opts.get("slow_interval", 5.5))
        super().__init__(config, runtime)
        self.default_max_age = {"orders": self.slow_interval}
        self.client = IbkrClient(config, self.scheduler, self._observe)
        self.session = SessionState()
        redis = self.runtime.redis
        lease = RedisLease(redis, self.session_name, float(opts.get("lease_ttl", 5.0))) if redis is not None else None
        self.section = SessionSection(self.connection, lease=lease, metrics=self.runtime.metrics)
        ttl = float(opts.get("confirmation_ttl", 120.0))
        self.confirmations = (RedisConfirmationStore(redis, self.session_name, ttl) if redis is not None
                              else ConfirmationStore(ttl))
        self.replica = lease.replica if lease is not None else "local"
        self.login_claim = LoginClaim(self.session_name) if redis is None else None
        reference_ttl = float(opts.get("reference_ttl", 300.0))
        self._portfolio: Shared[list[tuple[AccountKind, dict[str, Any]]]] = Shared(self._load_portfolio, reference_ttl)
        self._groups: Shared[list[AllocationGroup]] = Shared(self._load_groups, reference_ttl)
        self.instruments = InstrumentResolver(self.client)
        self.tickle_interval = float(opts.get("tickle_interval", 60.0))
        self.repoll_delay = float(opts.get("orders_repoll_delay", 1.0))
        self._tickler: asyncio.Task[None] | None = None
        self.ws_url = str(opts.get("ws_url") or ws_url(config.base_url))
        self.ws_retry = float(opts.get("ws_retry", 5.0))
        self.ws_silence = float(opts.get("ws_silence", 35.0))
        self.ws_session: str | None = None  # the ``session`` of the last tickle: the socket's ``api`` cookie

    def claim(self) -> None:
        """Without Redis, claim the login for this process (``LoginInUse`` when another has it)."""
        if self.login_claim is not None:
            self.login_claim.acquire()

    def pacing_rules(self) -> PacingRules:
        opts = self.config.options
        return ibkr_pacing(global_rate=float(opts.get("global_rate", self.config.rate_limit or 8.0)),
                           slow_interval=float(opts.get("slow_interval", 5.5)),
                           tickle_interval=float(opts.get("tickle_interval_min", 1.1)),
                           global_window=float(opts.get("global_window", 1.0)))

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Claim the login (one replica per login without Redis: raises ``LoginInUse`` when another
        process on this machine holds it), check the session and start the keep-alive ``tickle``
        task; never raises because the broker is down."""
        self.claim()
        with budget.accepting(None), contextlib.suppress(GatewayError):
            await self._tickle_once()
        self._tickler = asyncio.create_task(self._tickle_forever(), name=f"ibkr-tickle-{self.connection}")

    async def close(self) -> None:
        if self._tickler is not None:
            self._tickler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tickler
            self._tickler = None
        await self.client.close()
        await super().close()
        if self.login_claim is not None:
            self.login_claim.release()

    def upstream_calls(self) -> int:
        return self.client.calls

    async def _tickle_forever(self) -> None:
        budget.priority.set(budget.Priority.BACKGROUND)
        while True:
            await asyncio.sleep(self.tickle_interval)
            with contextlib.suppress(GatewayError):
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
            self.section.forget()
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

    # -- the critical section (call with it held) -----------------------------------------
    def _section_calls(self, *calls: tuple[str, str]) -> list[tuple[str, str]]:
        """The calls to obtain permits for before entering the section: ``calls``, a possible
        switch, and the ``iserver/accounts`` pre-flight while it has not run."""
        out = [SWITCH, *calls]
        if not self.session.preflight:
            out.append(PREFLIGHT)
        return out

    async def _preflight(self, held: Held) -> None:
        """``GET iserver/accounts`` once per session (IBKR wants it before order calls); its
        ``selectedAccount`` is what the session has selected."""
        if self.session.preflight:
            return
        held.check()
        body = await self.client.accounts()
        self._learn(body)
        await held.set_value(body.get("selectedAccount"))
        self.session.preflight = True

    def _learn(self, body: dict[str, Any]) -> None:
        self.session.groups = frozenset(g for g in body.get("groups") or [] if g != "All")
        props = body.get("acctProps") or {}
        self.session.master = next((a for a, p in props.items() if p.get("hasChildAccounts")), self.session.master)

    async def _select(self, held: Held, target: str) -> None:
        """Switch the session to ``target`` (an account, an allocation group or ``All``) unless it is
        selected already."""
        await self._preflight(held)
        if held.value == target:
            return
        held.check()
        await held.set_value(None)  # unknown until IBKR confirms
        await self.client.switch_account(target)
        await held.set_value(target)
        self.session.switches += 1

    async def _read_live(self, target: str) -> list[Order]:
        """Switch to ``target`` and read its live orders. The permits come first, then the section,
        which holds only the switch and the read. An empty answer that may be a cold snapshot (the
        first after a login, or ``snapshot: false``) is read again after ``orders_repoll_delay``,
        outside the section; items of another account (the session switched under us) are never
        returned as this one's: the read is made again. A switch or read that fails for want of an
        answer (timeout, reset, 5xx) is tried again ``read_retries`` times, after a backoff spent
        outside the section (inside, a request is made once)."""
        failures = 0
        for attempt in range(4 + self.config.read_retries):
            async with self.scheduler.permits(self._section_calls(LIVE_ORDERS)), self.section.hold() as held:
                try:
                    await self._select(held, target)
                    held.check()
                    body = await self.client.live_orders()
                except GatewayError as exc:
                    self.section.forget()  # re-validate on the next call
                    retryable = isinstance(exc, RequestTimeout | BrokerNotAvailable) \
                        and not isinstance(exc, RateLimitExceeded | CircuitOpen)
                    if not retryable or failures >= self.config.read_retries:
                        raise
                    failure = exc
                else:
                    failure = None
            if failure is not None:
                failures += 1
                await asyncio.sleep(min(0.1 * 2 ** failures, self.config.retry_max_wait))
                continue
            items = [i for i in (body or {}).get("orders") or [] if isinstance(i, dict)]
            snapshot = (body or {}).get("snapshot")
            cold = not items and (snapshot is False or not self.session.primed)
            if snapshot is not False:
                self.session.primed = True
            if cold and attempt < 2:
                # the first snapshot(s) after a login are empty, and a session re-established behind
                # our back forgets the pre-flight (which also says what is selected): re-validate,
                # then read again, the section free meanwhile
                self.session.preflight = False
                await asyncio.sleep(self.repoll_delay)
                continue
            if any(str(i.get("acct")) != target for i in items):
                log.warning("IBKR %s: another account's orders in %s's snapshot; reading again",
                            self.connection, target)
                self.section.forget()
                continue
            return self._parse_live(items, target)
        raise BadResponse(f"IBKR kept answering other accounts' orders for {target}", connection=self.connection)

    def _parse_live(self, items: list[dict[str, Any]], target: str) -> list[Order]:
        """Items read under ``target``; a group's orders are keyed under the master, as they are when
        the master is selected. ``createdAt`` is the gateway's first sight (:mod:`.first_seen`)."""
        if target in self.session.groups and self.session.master:
            items = [{**i, "acct": self.session.master} for i in items]
        return first_seen.stamp(parse_live_order(self.connection, i, self.session.groups) for i in items)

    # -- reads ----------------------------------------------------------------------------
    balances_in_list = False

    async def read_account_list(self) -> list[Account]:
        """The accounts without balances: ``iserver/accounts`` (the session check, through the
        ``accounts`` snapshot) and the reference data kept ``reference_ttl`` seconds; no
        ``allocation/accounts`` or ``ledger`` request (``cash`` is ``None``)."""
        return list(await self.snapshot(("accounts", None), lambda: self.fetch_accounts(balances=False)))

    async def fetch_accounts(self, balances: bool = True) -> list[Account]:
        """The master (ADVISOR_MASTER) and sub-accounts (ADVISOR_CLIENT) of an FA session, else the
        accounts as INDIVIDUAL.

        Every load calls ``iserver/accounts`` (the session check: ``AuthenticationError`` while
        logged out) and, for an FA, ``iserver/account/allocation/accounts`` (one call for every
        sub-account's ``AvailableEquity``, which becomes ``cash``) and the master's
        ``portfolio/{id}/ledger`` (its cash balance, which the allocation accounts do not list).
        ``portfolio/accounts`` / ``portfolio/subaccounts`` (names, currencies) and the allocation
        groups (``allocation_group_names``) are kept ``reference_ttl`` seconds."""
        body = await self.client.accounts()
        self._learn(body)
        fa = bool((body.get("allowFeatures") or {}).get("allowFA"))
        listed = {str(a) for a in body.get("accounts") or []}
        equity: dict[str, Any] = {}
        if fa and balances:
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
            if fa and balances and acc.kind is AccountKind.ADVISOR_MASTER:
                acc.cash = parse_ledger_cash(await self.client.portfolio_ledger(acc.account_number), acc.base_currency)
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
        """``portfolio/{acct}/positions/{page}`` from page 0 until a page holds fewer than 100,
        through the ``positions`` snapshot of the account."""
        positions: list[Position] = await self.snapshot(("positions", account), lambda: self._read_positions(account))
        return [p for p in positions if filter is None or filter.matches(p)]

    async def fetch_positions_pages(self, queries: Sequence[WindowQuery]) -> list[Page | GatewayError]:
        """Windows of position lists. A window without a filter whose ``totalCount`` is not wanted
        (``WindowQuery.total`` false) reads only the pages of 100 it covers, plus the next item to
        tell ``hasNextPage``: ``first: 10`` reads page 0 alone, whatever the account holds. The others
        read the whole list (:meth:`fetch_positions`)."""
        head = [i for i, q in enumerate(queries) if not q.total and q.filter is None]
        if not head:
            return await super().fetch_positions_pages(queries)
        rest = [q for i, q in enumerate(queries) if i not in set(head)]
        whole = iter(await super().fetch_positions_pages(rest) if rest else [])
        heads = await asyncio.gather(*(self._positions_head(queries[i]) for i in head), return_exceptions=True)
        by_index = dict(zip(head, heads, strict=True))
        out: list[Page | GatewayError] = []
        for i in range(len(queries)):
            if i not in by_index:
                out.append(next(whole))
                continue
            result = by_index[i]
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                raise result
            out.append(result)
        return out

    async def _positions_head(self, q: WindowQuery) -> Page:
        full = self.snapshots.peek(("positions", q.account))
        if full is not None and time.monotonic() - full.at <= self.max_age("positions"):
            items: list[Position] = full.value
            return Page(items[q.offset:q.offset + q.limit], len(items))
        pages = (q.offset + q.limit) // 100 + 1  # one item beyond the window says whether there is a next page
        items = await self.snapshot(("positions", q.account, "head", pages),
                                    lambda: self._read_positions(q.account, pages))
        # the exact size is known only when the list ended (a page of fewer than 100); otherwise one
        # more than read, which is all ``hasNextPage`` needs
        complete = len(items) < pages * 100
        return Page(items[q.offset:q.offset + q.limit], len(items) + (0 if complete else 1))

    async def _read_positions(self, account: AccountKey, pages: int | None = None) -> list[Position]:
        """``portfolio/{acct}/positions/{page}`` from page 0 until a page holds fewer than 100 or
        ``pages`` pages are read."""
        as_of = datetime.now(UTC)
        out: list[Position] = []
        page = 0
        while pages is None or page < pages:
            items = await self.client.positions(account.account_number, page) or []
            out.extend(parse_position(self.connection, account.account_number, i, as_of) for i in items)
            if len(items) < 100:
                break
            page += 1
        return out

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        """Live orders of ``account`` (switch, then ``GET iserver/account/orders``), through the
        account's ``orders`` snapshot. Filters apply locally: IBKR's ``filters`` are known to return
        incomplete sets."""
        orders: list[Order] = await self.snapshot(("orders", account), lambda: self._read_live(account.account_number))
        return [o for o in orders if filter is None or filter.matches(o)]

    async def fetch_group_orders(self, group: AllocationGroupKey, filter: OrderFilter | None = None) -> list[Order]:
        """Orders placed for allocation group ``group``: the session switched to the group, then
        ``GET iserver/account/orders`` (the FA lesson's way), through the group's snapshot."""
        if not self.session.groups:
            await self.fetch_allocation_groups()
            if not self.session.groups:
                with budget.fresh():
                    self._learn(await self.client.accounts())
        if group.name not in self.session.groups:
            raise OrderNotFound(f"no IBKR allocation group {group.name}", connection=self.connection)
        target = AccountKey(self.connection, group.name)
        orders: list[Order] = await self.snapshot(("orders", target), lambda: self._read_live(group.name))
        return [o for o in orders if o.allocation_group == group and (filter is None or filter.matches(o))]

    async def fetch_orders_many(self, accounts: Sequence[AccountKey], filter: OrderFilter | None = None
                                ) -> dict[AccountKey, list[Order] | GatewayError]:
        """Every account's live orders, all asked at once so that identical reads of concurrent
        requests join them; the section takes them in arrival order, the selected account first, so
        each account is selected once."""
        if not self.session.preflight:  # learn what is selected, to start with it
            async with self.scheduler.permits([PREFLIGHT]), self.section.hold() as held:
                await self._preflight(held)
        selected = self.section.value
        ordered = sorted(dict.fromkeys(accounts), key=lambda a: a.account_number != selected)
        out: dict[AccountKey, list[Order] | GatewayError] = {}
        if not self.session.primed and ordered:  # a cold session's first snapshot is read twice: alone
            out.update(await self._per_account(ordered[:1], lambda a: self.fetch_orders(a, filter)))
            ordered = ordered[1:]
        out.update(await self._per_account(ordered, lambda a: self.fetch_orders(a, filter)))
        return {a: out[a] for a in accounts}

    async def fetch_order(self, key: OrderKey) -> Order:
        for order in await self.fetch_orders(AccountKey(key.connection, key.account_number)):
            if order.key.broker_order_id == key.broker_order_id:
                return order
        raise OrderNotFound(f"IBKR order {key.broker_order_id} not found in {key.account_number}",
                            connection=self.connection)

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """Searches the live orders of ``account`` (of the master for an allocation-group ``hint``),
        read anew."""
        number = account.account_number
        if hint is not None and hint.allocation_group is not None:
            number = self.session.master or await self._master()
        with budget.fresh():
            return next((o for o in await self.fetch_orders(AccountKey(self.connection, number))
                         if o.client_order_id == client_order_id), None)

    # -- streams --------------------------------------------------------------------------
    def watch_orders(self, account: AccountKey) -> AsyncIterator[Order]:
        """Orders of ``account`` as they change, over the CP WebSocket (``sor``), with REST
        ``fetch_orders`` reads while the socket is down; never ends by itself (see :mod:`.stream`)."""
        return watch_orders(self, account)
