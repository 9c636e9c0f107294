"""Issue #11, exactly-once orders under network faults, on every broker (docs/placement.md).

Over real HTTP, through a fault proxy (`tests/faultproxy.py`) in front of each venue, counting what the
venue holds afterwards by client order id (`tests/placement_drive.py`):

* 100 logical orders per broker with idempotency keys, 10 % of requests each timing out, reset after
  forwarding and answered non-JSON, 5 % each reset before forwarding, answered 502 or truncated after
  forwarding, and answered 429 without forwarding; clients retry up to 3 times → no logical order has
  two venue orders, every final answer is `OrderPlaced` naming the venue's order, `OrderOutcomeUnknown`
  naming the client order id, or "not placed" (`BrokerUnavailable`) where the venue holds no order for
  it — never for a live order; asked again without faults, every logical order is exactly
  one venue order, the one its answers name;
* the same key after a gateway restart (memory backend) → the same order;
* the same key on two replicas with Redis → one order, both answers name it;
* a placement held longer than the idempotency lock's initial lease → one order for two concurrent
  same-key requests;
* 200 concurrent keyed placements on one gateway with the Redis backend → 200 orders, no error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gateway.config import GatewayConfig
from gateway.graphql.order.mutations import NO_ORDER_YET, NOTHING_SENT
from gateway.idempotency import RedisIdempotencyStore
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import TEST_VENUE
from tests.faultproxy import FaultProxy
from tests.harness import SandboxControl, free_port, running_gateway
from tests.placement_drive import (
    BROKERS,
    Logical,
    account_ids,
    connection,
    held_by_cid,
    order_variables,
    place_logical,
    run_logical,
    tally,
)

FAULTS = {"timeout": 0.1, "reset_after": 0.1, "non_json": 0.1, "reset_before": 0.05, "error_5xx": 0.05,
          "truncated": 0.05, "rate_limited": 0.05}

#: where each broker's order write goes (the faults the proxy's `only` narrows to, in the lease test)
ORDER_WRITE = {"lemon": "/v1/orders", "ibkr": "/v1/api/iserver/account/", "etna": "/api/v1.0/accounts/",
               "aliceblue": "/open-api/od/v1/orders/placeorder"}


@pytest_asyncio.fixture(scope="module")
async def venues() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(list(BROKERS), config=EngineConfig.fast(),
                           venue_options={**TEST_VENUE, "ibkr": {"pacing": {"enabled": False}}})
    await runner.start()
    yield runner
    await runner.stop()


def _config(connections: dict[str, Any], redis_url: str | None = None) -> GatewayConfig:
    events = {"backend": "redis", "redis_url": redis_url} if redis_url else {}
    return GatewayConfig.model_validate({"profile": "development", "connections": connections, "events": events})


@pytest.mark.parametrize("broker", BROKERS)
async def test_logical_orders_under_faults_are_placed_exactly_once(venues: SandboxRunner, broker: str) -> None:
    proxy = FaultProxy(venues.base_urls[broker], dict(FAULTS), seed=11, hold=30.0)
    await proxy.start()
    control = SandboxControl(venues.base_urls[broker])
    try:
        conn = connection(venues, broker, proxy.url, **({"timeout": 0.3} if broker == "ibkr" else {}))
        conn["options"] = {**conn["options"], "visibility_delay": 0.5}
        async with running_gateway(_config({broker: conn})) as gateway:
            client = gateway.client()
            account = await account_ids(client, broker)
            logicals = await run_logical([client], broker, account, 100, concurrency=10)
            counted = await tally(control, broker, logicals)
            assert all(proxy.counts[kind] > 0 for kind in FAULTS), proxy.counts  # every kind happened
            assert counted.duplicated == 0 and counted.extra == 0, counted.problems
            assert counted.lost == 0 and counted.not_placed_live == 0, counted.problems
            held = await held_by_cid(control, broker, {lg.cid for lg in logicals})
            for lg in logicals:  # a final answer is the order, honestly unknown naming its client order id, or
                # (after a 429 or a reset before sending) "nothing placed" where the venue indeed holds nothing
                if lg.final["__typename"] == "OrderPlaced":
                    assert [lg.final["order"]["brokerOrderId"]] == held[lg.cid]
                    assert lg.final["order"]["clientOrderId"] == lg.cid
                elif lg.final["__typename"] == "BrokerUnavailable":
                    assert held[lg.cid] == [], lg
                else:
                    assert lg.final["__typename"] == "OrderOutcomeUnknown" and lg.final["clientOrderId"] == lg.cid, lg
            assert counted.unresolved <= 10, counted.finals
            # every attempt was the order, unknown, or "nothing was placed" where that is known: before any
            # attempt of the key may have sent the order (every earlier unknown says nothing was sent), or
            # checked at the broker
            assert set(counted.seen) <= {"OrderPlaced", "OrderOutcomeUnknown", "BrokerUnavailable"}, counted.seen
            for lg in logicals:
                for i, answer in enumerate(lg.answers):
                    may_have_sent = any(a["__typename"] == "OrderOutcomeUnknown" and NOTHING_SENT not in a["message"]
                                        for a in lg.answers[:i])
                    if answer["__typename"] == "BrokerUnavailable" and may_have_sent:
                        assert NO_ORDER_YET in answer["message"], (lg.key, lg.answers)

            proxy.rates = {}  # the network is well again: asked again, each key is its one order
            unresolved = [lg for lg in logicals if lg.final["__typename"] != "OrderPlaced"]
            await asyncio.gather(*(place_logical([client], order_variables(broker, account, lg.key), lg, retries=0)
                                   for lg in unresolved))
            again = await asyncio.gather(*(place_logical([client], order_variables(broker, account, lg.key),
                                                         Logical(lg.key, lg.cid), retries=0) for lg in logicals[:20]))
        final = await tally(control, broker, logicals)
        assert final.finals == {"OrderPlaced": 100} and final.clean, final.problems
        assert final.venue_orders == 100
        assert [a.final["order"]["brokerOrderId"] for a in again] == [lg.final["order"]["brokerOrderId"]
                                                                      for lg in logicals[:20]]
    finally:
        await proxy.stop()


@pytest.mark.parametrize("broker", BROKERS)
async def test_the_same_key_after_a_restart_is_the_same_order(venues: SandboxRunner, broker: str) -> None:
    """Memory backend: the restarted gateway has forgotten the key; the broker has not."""
    control = SandboxControl(venues.base_urls[broker])
    config = _config({broker: connection(venues, broker)})
    answers = []
    for _ in range(2):
        async with running_gateway(config) as gateway:
            account = await account_ids(gateway.client(), broker)
            logical = await place_logical([gateway.client()], order_variables(broker, account, f"restart-{broker}"),
                                          Logical(f"restart-{broker}", ""), retries=0)
            answers.append(logical.final)
    assert [a["__typename"] for a in answers] == ["OrderPlaced", "OrderPlaced"], answers
    first, second = (a["order"] for a in answers)
    assert first["brokerOrderId"] == second["brokerOrderId"] and first["clientOrderId"] == second["clientOrderId"]
    held = await held_by_cid(control, broker, {first["clientOrderId"]})
    assert held[first["clientOrderId"]] == [first["brokerOrderId"]]


@pytest.mark.parametrize("broker", BROKERS)
async def test_the_same_key_on_two_replicas_with_redis_is_one_order(venues: SandboxRunner, broker: str,
                                                                    redis_url: str) -> None:
    control = SandboxControl(venues.base_urls[broker])
    config = _config({broker: connection(venues, broker)}, redis_url)
    async with running_gateway(config) as one, running_gateway(config) as two:
        account = await account_ids(one.client(), broker)
        key = f"replicas-{broker}"
        both = await asyncio.gather(*(place_logical([g.client()], order_variables(broker, account, key),
                                                    Logical(key, ""), retries=0) for g in (one, two)))
    answers = [lg.final for lg in both]
    assert [a["__typename"] for a in answers] == ["OrderPlaced", "OrderPlaced"], answers
    ids = {a["order"]["brokerOrderId"] for a in answers}
    cid = answers[0]["order"]["clientOrderId"]
    assert len(ids) == 1 and (await held_by_cid(control, broker, {cid}))[cid] == sorted(ids)


@pytest.mark.parametrize("broker", ["etna", "aliceblue"])
async def test_a_placement_held_past_the_locks_first_lease_is_still_one_order(
        venues: SandboxRunner, broker: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order write takes 1.5 s (the proxy holds it), the lock's lease is 0.3 s: the lock is renewed
    while the first request places, so the second (on another replica) waits and answers the same
    order. On these brokers nothing else would stop a second order with the same client order id."""
    monkeypatch.setattr(RedisIdempotencyStore, "LEASE", 0.3)
    proxy = FaultProxy(venues.base_urls[broker], {"slow": 1.0}, delay=1.5, only=(f"POST {ORDER_WRITE[broker]}",))
    await proxy.start()
    control = SandboxControl(venues.base_urls[broker])
    try:
        config = _config({broker: connection(venues, broker, proxy.url, timeout=3.0)}, redis_url)
        async with running_gateway(config) as one, running_gateway(config) as two:
            account = await account_ids(one.client(), broker)
            key = f"lease-{broker}"
            first = asyncio.ensure_future(place_logical([one.client()], order_variables(broker, account, key),
                                                        Logical(key, ""), retries=0))
            await asyncio.sleep(0.8)  # the first holds the lock, past its lease, its write still out
            second = await place_logical([two.client()], order_variables(broker, account, key), Logical(key, ""),
                                         retries=0)
            answers = [(await first).final, second.final]
        assert proxy.counts["slow"] == 1  # one order write reached the venue
        assert [a["__typename"] for a in answers] == ["OrderPlaced", "OrderPlaced"], answers
        cid = answers[0]["order"]["clientOrderId"]
        assert answers[0]["order"]["brokerOrderId"] == answers[1]["order"]["brokerOrderId"]
        assert len((await held_by_cid(control, broker, {cid}))[cid]) == 1
    finally:
        await proxy.stop()


async def test_200_concurrent_keyed_placements_with_redis_are_200_orders(venues: SandboxRunner, redis_url: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Every placement holds an idempotency lock and publishes its order's event through Redis: none
    may fail for want of a Redis connection (redis-py's default pool of 100 raised
    MaxConnectionsError), and every event is published."""
    caplog.set_level(logging.WARNING, logger="gateway")
    config = _config({"etna": connection(venues, "etna", timeout=20.0)}, redis_url)
    async with running_gateway(config) as gateway:
        client = gateway.client()
        account = await account_ids(client, "etna")
        logicals = await run_logical([client], "etna", account, 200, concurrency=200, retries=0)
    counted = await tally(SandboxControl(venues.base_urls["etna"]), "etna", logicals)
    assert counted.finals == {"OrderPlaced": 200}, [lg.final for lg in logicals if lg.final["__typename"] !=
                                                    "OrderPlaced"][:3]
    assert counted.venue_orders == 200 and counted.clean
    unpublished = [r.getMessage() for r in caplog.records if "could not publish" in r.getMessage()]
    assert not unpublished, f"{len(unpublished)} events not published, e.g. {unpublished[0]}"


async def test_a_redis_outage_while_claiming_a_key_is_broker_unavailable_and_sends_nothing(
        venues: SandboxRunner, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events run on Redis; the idempotency store's Redis is down (nothing listens on its port)."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    init = RedisIdempotencyStore.__init__
    monkeypatch.setattr(RedisIdempotencyStore, "__init__", lambda self, url, **kw: init(self, down, **kw))
    control = SandboxControl(venues.base_urls["etna"])
    config = _config({"etna": connection(venues, "etna")}, redis_url)
    async with running_gateway(config) as gateway:
        account = await account_ids(gateway.client(), "etna")
        before = (await control.stats()).get("POST /api/v1.0/accounts/6303/orders", 0)
        logical = await place_logical([gateway.client()], order_variables("etna", account, "redis-down"),
                                      Logical("redis-down", ""), retries=0)
    assert logical.final["__typename"] == "BrokerUnavailable" and "idempotency" in logical.final["message"], logical
    assert (await control.stats()).get("POST /api/v1.0/accounts/6303/orders", 0) == before
