"""Logical orders through fault proxies (issue #11), shared by the placement tests and ``bench/faults.py``.

A *logical order* is one ``placeOrder`` input with an ``idempotencyKey``, sent by a client that retries
up to ``retries`` times on ``OrderOutcomeUnknown``, ``BrokerUnavailable`` or a transport error, as the
README tells clients to. Afterwards :func:`tally` counts what the venue holds by client order id (the
gateway derives it from the principal, connection and key: :func:`gateway.idempotency.client_order_id`)
against the final answers:

* ``duplicated``: logical orders with more than one venue order (``extra``: how many more);
* ``lost``: logical orders the venue holds whose final answer gives the client no handle on it: neither
  ``OrderPlaced`` naming it nor ``OrderOutcomeUnknown`` with its client order id (or an ``OrderPlaced``
  that names an order the venue does not hold);
* ``not_placed_live``: final answers that say nothing was placed (``BrokerUnavailable``, ``OrderRejected``)
  while the venue holds the order;
* ``unresolved``: final answers ``OrderOutcomeUnknown`` (honest: the client asks again with the key).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.domain.keys import AccountKey
from gateway.graphql.ids import encode
from gateway.idempotency import client_order_id
from gateway.sandbox.etna.resources import ORDER_ID_BASE as ETNA_ORDER_ID_BASE
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, SandboxControl, document

BROKERS = ("lemon", "ibkr", "etna", "aliceblue")

#: the account each broker's logical orders go to
ACCOUNTS = {"lemon": None, "ibkr": "DU4510331", "etna": "6303", "aliceblue": "912444"}

#: resting limit orders that raise no question and never fill at the venues' static test prices
INSTRUMENTS: dict[str, dict[str, Any]] = {
    "lemon": {"instrument": {"isin": "US0378331005"}, "type": "LIMIT", "limitPrice": "100.00"},
    "ibkr": {"instrument": {"brokerInstrumentId": "265598"}, "type": "LIMIT", "limitPrice": "226.00"},
    "etna": {"instrument": {"symbol": "AAPL"}, "type": "LIMIT", "limitPrice": "100.00"},
    "aliceblue": {"instrument": {"symbol": "ACC", "exchange": "NSE"}, "type": "LIMIT", "limitPrice": "2000.00",
                  "product": "INTRADAY"},
}

RETRY_ON = {"OrderOutcomeUnknown", "BrokerUnavailable"}


def connection(runner: SandboxRunner, name: str, base_url: str | None = None, **over: Any) -> dict[str, Any]:
    """The connection to venue ``name`` (through ``base_url``, a fault proxy, when given): short timeouts
    so that faults fail fast, and the test venues' generous rate limits."""
    venue = runner.venue(name)
    options = dict(venue.options)
    verify = bool(options.pop("verify_tls", True))
    if name == "ibkr":
        options.update({"orders_repoll_delay": 0.05, "ws_url": runner.base_urls["ibkr"].replace("http", "ws") + "ws"})
    conn: dict[str, Any] = {"broker": name, "base_url": base_url or runner.base_urls[name],
                            "credentials": dict(venue.credentials), "options": options, "verify_tls": verify,
                            "timeout": 0.5, "connect_timeout": 0.5, "read_retries": 2, "retry_max_wait": 0.1,
                            "breaker_threshold": 1000, **over}
    if name in ("lemon", "aliceblue"):
        conn.setdefault("rate_limit", 10_000)
    return conn


@dataclass
class Logical:
    """One logical order: its key, the answers of its attempts (``__typename`` + fields)."""

    key: str
    cid: str
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.answers[-1] if self.answers else {"__typename": "none"}


async def account_ids(client: GraphQLClient, connection_name: str, tries: int = 20) -> str:
    """The global id of the account :data:`ACCOUNTS` names on ``connection_name`` (reads retried
    through the faults)."""
    wanted = ACCOUNTS[connection_name]
    if wanted is not None:
        return encode(AccountKey(connection_name, wanted))
    query = "{ connections { name accounts { id accountNumber } } }"
    for _ in range(tries):
        response = await client.post(query)
        body = response.json()
        for conn in (body.get("data") or {}).get("connections") or []:
            if conn["name"] != connection_name:
                continue
            for account in conn["accounts"] or []:
                if wanted is None or account["accountNumber"] == wanted:
                    return str(account["id"])
    raise AssertionError(f"no account of {connection_name} could be read")


def order_variables(broker: str, account_id: str, key: str, quantity: int = 1) -> dict[str, Any]:
    return {"input": {"accountId": account_id, "side": "BUY", "quantity": str(quantity), "idempotencyKey": key,
                      **INSTRUMENTS[broker]}}


async def place_logical(clients: list[GraphQLClient], variables: dict[str, Any], logical: Logical,
                        retries: int = 3, timeout: float = 45.0) -> Logical:
    """Send one logical order, retrying up to ``retries`` times; ``clients`` are taken in turn (two
    replicas, say). The client waits ``timeout`` seconds, longer than the gateway's operation
    deadline (30 s), so that an answer given at the deadline is read, not taken for a lost one."""
    for attempt in range(retries + 1):
        client = clients[attempt % len(clients)]
        try:
            response = await client.post(document("PlaceOrder"), variables, operation="PlaceOrder", timeout=timeout)
            body = response.json()
        except (httpx.TransportError, ValueError) as exc:
            logical.answers.append({"__typename": "transport", "message": repr(exc)})
            continue
        if body.get("errors") or not body.get("data"):
            logical.answers.append({"__typename": "errors", "errors": body.get("errors")})
            continue
        answer = body["data"]["placeOrder"]
        logical.answers.append(answer)
        if answer["__typename"] not in RETRY_ON:
            break
    return logical


async def run_logical(clients: list[GraphQLClient], broker: str, account_id: str, count: int, *,
                      principal: str = "anonymous", connection_name: str | None = None, concurrency: int = 10,
                      retries: int = 3) -> list[Logical]:
    """``count`` logical orders on ``broker`` (``concurrency`` clients at once)."""
    name = connection_name or broker
    scope = f"{principal}\x00{name}\x00placeOrder"
    run = uuid.uuid4().hex[:8]
    logicals = [Logical(key, client_order_id(scope, key)) for key in (f"{run}-{i}" for i in range(count))]
    gate = asyncio.Semaphore(concurrency)

    async def one(logical: Logical) -> None:
        async with gate:
            await place_logical(clients, order_variables(broker, account_id, logical.key), logical, retries)

    await asyncio.gather(*(one(lg) for lg in logicals))
    return logicals


@dataclass
class Tally:
    logical: int
    venue_orders: int
    duplicated: int
    extra: int
    lost: int
    not_placed_live: int
    unresolved: int
    finals: Counter[str]
    problems: list[str]
    #: every answer of every attempt, by ``__typename``
    seen: Counter[str] = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return not (self.duplicated or self.extra or self.lost or self.not_placed_live)


def wire_id(broker: str, venue_id: str) -> str:
    """The order id the broker's wire (and so the gateway's ``brokerOrderId``) shows for a venue order."""
    return str(ETNA_ORDER_ID_BASE + int(venue_id)) if broker == "etna" else venue_id


async def held_by_cid(control: SandboxControl, broker: str, cids: set[str]) -> dict[str, list[str]]:
    """The wire ids of the venue's orders for each of ``cids``."""
    held: dict[str, list[str]] = {c: [] for c in cids}
    for order in (await control.state())["orders"]:
        if order["client_order_id"] in held:
            held[order["client_order_id"]].append(wire_id(broker, str(order["id"])))
    return held


async def tally(control: SandboxControl, broker: str, logicals: list[Logical]) -> Tally:
    held = await held_by_cid(control, broker, {lg.cid for lg in logicals})
    duplicated = extra = lost = not_placed_live = unresolved = 0
    problems: list[str] = []
    finals: Counter[str] = Counter()
    for lg in logicals:
        ids = held[lg.cid]
        final = lg.final
        finals[final["__typename"]] += 1
        if len(ids) > 1:
            duplicated += 1
            extra += len(ids) - 1
            problems.append(f"{lg.key}: {len(ids)} venue orders {ids}")
        named = final["order"]["brokerOrderId"] if final["__typename"] == "OrderPlaced" else None
        unknown = final["__typename"] == "OrderOutcomeUnknown" and final.get("clientOrderId") == lg.cid
        unresolved += unknown
        if named is not None and named not in ids:
            lost += 1
            problems.append(f"{lg.key}: answer names {named}, the venue holds {ids}")
        elif ids and named is None and not unknown:
            lost += 1
            problems.append(f"{lg.key}: venue holds {ids}, final answer {final}")
        if ids and final["__typename"] in ("BrokerUnavailable", "OrderRejected"):
            not_placed_live += 1
    seen = Counter(a["__typename"] for lg in logicals for a in lg.answers)
    return Tally(len(logicals), sum(len(v) for v in held.values()), duplicated, extra, lost, not_placed_live,
                 unresolved, finals, problems, seen)
