"""Cost analysis before execution (gateway/graphql/cost.py) and the operation deadline."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from graphql import parse

from gateway.cli import sandbox_config
from gateway.config import GatewayConfig, LimitsConfig
from gateway.graphql import cost as cost_module
from gateway.graphql.cost import BROKER_DEFAULTS, connection_costs, estimate
from gateway.graphql.schema import build_schema
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import TEST_VENUE, gateway_config, lemon_connections
from tests.harness import QUERIES, RunningGateway, SandboxControl, running_gateway

SCHEMA = build_schema()._schema  # type: ignore[attr-defined]


def _aliases(field: str, n: int) -> str:
    return "{ " + " ".join(f'a{i}: {field}(first: 100, filter: {{symbol: "S{i}"}}) {{ totalCount nodes {{ id }} }}'
                           for i in range(n)) + " }"


NESTED = "{ " + " ".join(f"a{i}: accounts {{ orders {{ nodes {{ id }} }} positions {{ nodes {{ id }} }} "
                         f"allocationGroups {{ orders {{ nodes {{ id }} }} }} }}" for i in range(10)) + " }"


@pytest.fixture(scope="module")
async def venues() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(["lemon", "ibkr"], config=EngineConfig.fast(),
                           venue_options={**TEST_VENUE, "ibkr": {"pacing": {"enabled": False}}})
    await runner.start()
    yield runner
    await runner.stop()


@pytest.fixture(scope="module")
async def both(venues: SandboxRunner) -> AsyncIterator[RunningGateway]:
    async with running_gateway(sandbox_config(venues)) as gateway:  # development: every connection, no key
        yield gateway


async def _upstream(venues: SandboxRunner) -> int:
    return sum([await SandboxControl(url).total() for url in venues.base_urls.values()])


async def test_thirty_aliases_of_positions_are_refused_with_the_estimate_and_no_upstream_request(
        both: RunningGateway, venues: SandboxRunner) -> None:
    before = await _upstream(venues)
    for document, expected in ((_aliases("positions", 30), 30 * (1 * (1 + 2) + 2 * (1 + 25))),
                               (_aliases("orders", 30), 30 * (1 * (1 + 2) + 2 * (1 + 25))),
                               (NESTED, 10 * ((1 + 2 * 3) + 2 * (1 + 25 * (3 + 5))))):
        response = await both.client().post(document)
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "cost": expected, "maxCost": 1000}, error
        assert str(expected) in error["message"]
    assert await _upstream(venues) == before  # refused before any broker request


async def test_the_dashboard_and_every_query_document_stay_under_the_default_budget(
        both: RunningGateway, venues: SandboxRunner) -> None:
    every_broker = list(BROKER_DEFAULTS.values())
    budget = LimitsConfig().max_cost
    documents = sorted(QUERIES.glob("*.graphql"))
    assert len(documents) >= 10
    for path in documents:
        cost = estimate(SCHEMA, parse(path.read_text()), None, {}, every_broker)
        assert 0 < cost <= budget / 4, (path.name, cost)  # room for several brokers of each kind
    dashboard = await both.client().run("Dashboard")
    assert not any(e["extensions"]["code"] == "QUERY_TOO_COMPLEX" for e in dashboard.get("errors", []))
    assert {c["name"] for c in dashboard["data"]["connections"]} == {"lemon", "ibkr"}
    one = await both.client().post(_aliases("positions", 1))
    assert one.json()["data"]["a0"]["totalCount"] == 0


def test_weights_assumptions_and_budget_are_configurable() -> None:
    dashboard = parse((QUERIES / "Dashboard.graphql").read_text())
    config = GatewayConfig.model_validate({"connections": {
        "paper": {"broker": "lemon", "base_url": "https://x.example/v1/"},
        "heavy": {"broker": "lemon", "base_url": "https://y.example/v1/", "cost_weight": 10, "cost_accounts": 40,
                  "cost_groups": 3}}})
    paper, heavy = connection_costs(config, frozenset({"paper"})), connection_costs(config, frozenset({"heavy"}))
    assert paper == [BROKER_DEFAULTS["lemon"]]
    assert estimate(SCHEMA, dashboard, None, {}, paper) == 1 + 1 + 1 + 2 * 2  # status, groups, accounts, 2 × 2 lists
    assert estimate(SCHEMA, dashboard, None, {}, heavy) == 10 * (1 + 1 + 1 + 40 * 2)
    first = parse("query($n: Int = 7) { account(id: \"x\") { orders(first: $n) { nodes { account { "
                  "positions { totalCount } } } } } }")
    # the account by id, its orders, and the positions of each order's account (7 orders, or 3)
    assert estimate(SCHEMA, first, None, {}, paper) == 1 + 1 + 7
    assert estimate(SCHEMA, first, None, {"n": 3}, paper) == 1 + 1 + 3


async def test_a_lower_budget_refuses_the_dashboard(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url))
    config.limits.max_cost = 5
    async with running_gateway(config) as gateway:
        body = (await gateway.client().post((QUERIES / "Dashboard.graphql").read_text())).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["errors"][0]["extensions"]["maxCost"] == 5 and body["errors"][0]["extensions"]["cost"] > 5


async def test_the_estimate_is_kept_per_document_and_variables(lemon_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A document sent again with the same variables is estimated once; other variables are
    estimated again and refused or accepted by their own estimate."""
    calls: list[object] = []
    real = cost_module.estimate

    def counting(*args: object, **kwargs: object) -> float:
        calls.append(args[3])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cost_module, "estimate", counting)
    config = gateway_config(lemon_connections(lemon_url))
    config.limits.max_cost = 10
    document = ("query Kept($n: Int) { account(id: \"x\") { orders(first: $n) { nodes { account { "
                "positions { totalCount } } } } } }")  # 1 + 1 + n (lemon: weight 1)

    def refused(body: dict) -> bool:
        return any(e["extensions"]["code"] == "QUERY_TOO_COMPLEX" for e in body.get("errors") or [])

    async with running_gateway(config) as gateway:
        client = gateway.client()
        for n, too_costly in ((3, False), (3, False), (20, True), (3, False), (20, True), (3.0, None)):
            body = (await client.post(document, {"n": n})).json()
            if too_costly is not None:
                assert refused(body) is too_costly, (n, body)
    assert calls == [{"n": 3}, {"n": 20}, {"n": 3.0}]  # 3.0 is not 3: a variable's type is part of the key


async def test_the_operation_deadline_ends_a_stalled_operation_with_a_typed_error() -> None:
    """A broker that answers after 4 s, a connection timeout of 20 s and two retries: the operation's
    deadline (limits.operation_timeout) ends it with coded errors, not an open socket."""
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
    await runner.start()
    try:
        url = runner.base_urls["lemon"]
        config = gateway_config(lemon_connections(url, timeout=20.0, read_retries=2))
        config.limits.operation_timeout = 1.0
        await SandboxControl(url).fault(delay=4, path="/v1/account")  # beyond the deadline; short, for the venue to stop
        async with running_gateway(config) as gateway:
            started = time.monotonic()
            body = await gateway.client().run("Dashboard", timeout=30)
            elapsed = time.monotonic() - started
    finally:
        await runner.stop()
    assert elapsed < 3.0, elapsed
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes and codes <= {"BROKER_UNAVAILABLE", "BROKER_BUSY"}, body["errors"]

