"""Filters pushed down to ETNA equal the local filter of the full list (hypothesis), and user input
can never change the expression (injection attempts match nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from etna_harness import Etna
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.brokers.etna.adapter import EtnaAdapter
from gateway.brokers.etna.filters import order_filter, position_filter, string_literal
from gateway.domain import AccountKey, Order, OrderFilter, OrderSide, OrderStatus, Position, PositionFilter

ACCOUNTS = ("6303", "6304")
INJECTIONS = ["A' or Symbol = 'B", "AAPL' or Symbol = 'MSFT", "AAPL' or '1'='1", "'", "''", "AAPL'--",
              "' or Quantity > 0 and Symbol <> '", "#2020-01-01#", "AAPL') or (1=1"]
SYMBOLS = ["AAPL", "aapl", "MSFT", "SPY", "NVDA", "META", "QQQ", "IBM", "GOOGL", "AMZN", "TSLA", "XYZ"]
HYPOTHESIS = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
async def etna() -> AsyncIterator[Etna]:
    venue = await Etna().start()  # nothing in this module writes: the state stays as seeded
    yield venue
    await venue.stop()


@pytest.fixture(scope="module")
async def adapter(etna: Etna) -> AsyncIterator[EtnaAdapter]:
    adapter = etna.adapter()
    yield adapter
    await adapter.close()


@pytest.fixture(scope="module")
async def full(adapter: EtnaAdapter) -> dict[str, tuple[list[Position], list[Order]]]:
    out = {}
    for account in ACCOUNTS:
        key = AccountKey(adapter.connection, account)
        out[account] = (await adapter.fetch_positions(key), await adapter.fetch_orders(key))
    return out


def _near(times: list[datetime]) -> st.SearchStrategy[datetime | None]:
    jitter = st.integers(min_value=-1_500_000, max_value=1_500_000).map(lambda us: timedelta(microseconds=us))
    return st.one_of(
        st.none(),
        st.builds(lambda t, d: t + d, st.sampled_from(times), jitter),
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    )


symbols = st.one_of(st.none(), st.sampled_from(SYMBOLS + INJECTIONS),
                    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6))
quantities = st.one_of(st.none(), st.sampled_from([Decimal(q) for q in ("-20", "0", "10", "12", "15", "25", "150")]),
                       st.decimals(min_value=-300, max_value=300, places=3, allow_nan=False, allow_infinity=False))


@given(data=st.data())
@HYPOTHESIS
async def test_position_filter_pushdown_equals_local_filter(adapter: EtnaAdapter, full: dict, data: st.DataObject
                                                            ) -> None:
    f = data.draw(st.builds(PositionFilter, symbol=symbols, min_quantity=quantities, max_quantity=quantities,
                            isin=st.one_of(st.none(), st.just("US0378331005"))))
    account = data.draw(st.sampled_from(ACCOUNTS))
    key = AccountKey(adapter.connection, account)
    expected = [p.key for p in full[account][0] if f.matches(p)]
    assert [p.key for p in await adapter.fetch_positions(key, f)] == expected
    if f.isin is None:  # everything else is pushed down: ETNA alone answers exactly the expected set
        wire = await adapter.client.get_positions(account, sort_field="Symbol", filter=position_filter(f).expression)
        assert [str(p["SecurityId"]) for p in wire.body["Result"]] == [k.instrument_id for k in expected]


@given(data=st.data())
@HYPOTHESIS
async def test_order_filter_pushdown_equals_local_filter(adapter: EtnaAdapter, full: dict, data: st.DataObject
                                                         ) -> None:
    account = data.draw(st.sampled_from(ACCOUNTS))
    orders = full[account][1]
    times = [o.created_at for o in orders if o.created_at]
    f = data.draw(st.builds(
        OrderFilter, statuses=st.frozensets(st.sampled_from(list(OrderStatus)), max_size=3), symbol=symbols,
        side=st.one_of(st.none(), st.sampled_from(list(OrderSide))), created_after=_near(times),
        created_before=_near(times)))
    key = AccountKey(adapter.connection, account)
    expected = [o.key for o in orders if f.matches(o)]
    assert [o.key for o in await adapter.fetch_orders(key, f)] == expected
    push = order_filter(f)
    if not push.empty:
        wire = await adapter.client.get_orders(account, sort_field="CreateDate", desc=True, filter=push.expression)
        ids = [str(o["Id"]) for o in wire.body["Result"]]
        assert set(ids) >= {k.broker_order_id for k in expected}  # never drops a match
        if f.side is None and f.created_after is None and f.created_before is None:
            assert ids == [k.broker_order_id for k in expected]


@pytest.mark.parametrize("symbol", INJECTIONS)
async def test_injected_symbol_matches_nothing(adapter: EtnaAdapter, symbol: str) -> None:
    for account in ACCOUNTS:
        key = AccountKey(adapter.connection, account)
        assert await adapter.fetch_positions(key, PositionFilter(symbol=symbol)) == []
        assert await adapter.fetch_orders(key, OrderFilter(symbol=symbol)) == []
        # ETNA read it as one literal: a valid filter (HTTP 200) that matches nothing, not a 400
        expression = position_filter(PositionFilter(symbol=symbol)).expression
        wire = await adapter.client.get_positions(account, filter=expression)
        assert wire.status == 200 and wire.body["TotalCount"] == 0


async def test_unescaped_injection_would_have_widened_the_result(adapter: EtnaAdapter) -> None:
    """The control: the same input pasted raw changes the expression (400 for ``or``), escaped it does not."""
    from gateway.domain import BrokerError

    with pytest.raises(BrokerError) as info:
        await adapter.client.get_positions("6303", filter="Symbol = 'A' or Symbol = 'B'")
    assert info.value.broker_code == "BadRequest"
    raw = "AAPL' and Quantity > '0"
    assert string_literal(raw) == "'AAPL'' and Quantity > ''0'"
    wire = await adapter.client.get_positions("6303", filter=f"Symbol = {string_literal(raw)}")
    assert wire.body["TotalCount"] == 0


def test_expressions_for_every_pushed_condition() -> None:
    after = datetime(2024, 5, 1, 12, 30, 15, 500_000, tzinfo=UTC)
    assert order_filter(OrderFilter(statuses=frozenset({OrderStatus.FILLED, OrderStatus.EXPIRED}), symbol="AAPL",
                                    created_after=after, created_before=after)).expression == (
        "Status in (2, 3, 12) and Symbol = 'AAPL' and CreateDate >= #2024-05-01T12:30:15# "
        "and CreateDate < #2024-05-01T12:30:16#")
    assert position_filter(PositionFilter(min_quantity=Decimal("1.5"), max_quantity=Decimal(100))).expression == (
        "Quantity between 1.5 and 100")
    assert position_filter(PositionFilter(max_quantity=Decimal("-1E+1"))).expression == "Quantity <= -10"
    assert order_filter(OrderFilter(side=OrderSide.BUY)).expression is None
    assert order_filter(OrderFilter(statuses=frozenset({OrderStatus.PENDING_ACTIVATION}))).empty
