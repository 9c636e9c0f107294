"""A query reads what its selection needs, counted at the IBKR venue (``/__sandbox__/stats``):
``first: 10`` of an account with 250 positions reads one page of 100, ``totalCount`` reads them all,
and accounts without ``cash`` make no balance request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from ibkr_support import BIG
from test_ibkr_graphql import gateway_config

from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, SandboxControl, running_gateway

ACCOUNTS = "query { connections { name accounts { id accountNumber displayName kind baseCurrency%s } } }"
POSITIONS = """query($id: ID!, $first: Int) { account(id: $id) { positions(first: $first, maxAge: 0) {
  nodes { id } pageInfo { hasNextPage endCursor }%s } } }"""
BALANCES = ("GET /v1/api/iserver/account/allocation/accounts", "GET /v1/api/portfolio/DF4510328/ledger")


@dataclass
class Venue:
    gql: GraphQLClient
    control: SandboxControl


@pytest_asyncio.fixture(scope="module")
async def venue() -> AsyncIterator[Venue]:
    runner = SandboxRunner(["ibkr"], config=EngineConfig.fast(), venue_options={"ibkr": {"pacing": {"enabled": False}}})
    urls = await runner.start()
    try:
        async with running_gateway(gateway_config(runner)) as gateway:
            yield Venue(gateway.client(), SandboxControl(urls["ibkr"]))
    finally:
        await runner.stop()


async def _big_id(venue: Venue) -> str:
    data = await _data(venue, ACCOUNTS % "")
    return next(a["id"] for a in data["connections"][0]["accounts"] if a["accountNumber"] == BIG)


async def _data(venue: Venue, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await venue.gql.post(query, variables)
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return dict(body["data"])


def _pages(stats: dict[str, int]) -> list[str]:
    return sorted(k for k in stats if k.startswith(f"GET /v1/api/portfolio/{BIG}/positions/"))


async def test_first_ten_of_250_positions_reads_one_page_and_total_count_reads_all(venue: Venue) -> None:
    big = await _big_id(venue)
    await venue.control.reset()
    page = (await _data(venue, POSITIONS % "", {"id": big, "first": 10}))["account"]["positions"]
    assert len(page["nodes"]) == 10 and page["pageInfo"]["hasNextPage"] is True
    assert _pages(await venue.control.stats()) == [f"GET /v1/api/portfolio/{BIG}/positions/0"]
    # the window's end at the page's end: one more page says whether there is a next one
    await venue.control.reset()
    page = (await _data(venue, POSITIONS % "", {"id": big, "first": 100}))["account"]["positions"]
    assert len(page["nodes"]) == 100 and page["pageInfo"]["hasNextPage"] is True
    assert len(_pages(await venue.control.stats())) == 2
    await venue.control.reset()
    page = (await _data(venue, POSITIONS % " totalCount", {"id": big, "first": 10}))["account"]["positions"]
    assert page["totalCount"] == 250 and len(page["nodes"]) == 10
    assert len(_pages(await venue.control.stats())) == 3  # pages 0, 1, 2 (of 100, 100, 50)


async def test_total_count_selected_through_fragments_reads_all_pages(venue: Venue) -> None:
    """``totalCount`` named only in a fragment spread or an inline fragment still reads every page."""
    big = await _big_id(venue)
    spread = (POSITIONS % " ...Total") + " fragment Total on PositionConnection { totalCount }"
    for query in (spread, POSITIONS % " ... on PositionConnection { totalCount }"):
        await venue.control.reset()
        page = (await _data(venue, query, {"id": big, "first": 10}))["account"]["positions"]
        assert page["totalCount"] == 250 and len(page["nodes"]) == 10
        assert len(_pages(await venue.control.stats())) == 3
    # a fragment without it is still a window's read
    await venue.control.reset()
    query = (POSITIONS % " ...Info") + " fragment Info on PositionConnection { pageInfo { hasPreviousPage } }"
    page = (await _data(venue, query, {"id": big, "first": 10}))["account"]["positions"]
    assert len(page["nodes"]) == 10 and page["pageInfo"]["hasNextPage"] is True
    assert len(_pages(await venue.control.stats())) == 1


async def test_accounts_without_cash_make_no_balance_request(venue: Venue) -> None:
    await venue.control.reset()
    data = await _data(venue, ACCOUNTS % "")
    assert len(data["connections"][0]["accounts"]) > 20
    stats = await venue.control.stats()
    assert [k for k in BALANCES if stats.get(k)] == [], stats
    await venue.control.reset()
    data = await _data(venue, ACCOUNTS % " cash { amount currency }")
    assert any(a["cash"] for a in data["connections"][0]["accounts"])
    stats = await venue.control.stats()
    assert all(stats.get(k) for k in BALANCES), stats  # the same query with cash reads both
