"""``page_plan``: the ETNA pages read for a Relay window cover it, within ETNA's page-size cap,
with one page whenever one page size can cover it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.brokers.etna.windows import page_plan


@given(offset=st.integers(0, 5000), limit=st.integers(0, 400), max_page=st.sampled_from([99, 100]))
def test_pages_cover_the_window(offset: int, limit: int, max_page: int) -> None:
    size, first, last = page_plan(offset, limit, max_page)
    assert 1 <= size <= max_page and first <= last
    assert first * size <= offset and offset + limit <= (last + 1) * size
    single = [s for s in range(max(limit, 1), max_page + 1) if offset // s == (offset + max(limit, 1) - 1) // s]
    assert (first == last) == bool(single)
    if first != last:
        assert last - first <= limit // max_page + 1  # as few full pages as the window needs


def test_examples() -> None:
    assert page_plan(0, 50, 100) == (50, 0, 0)
    assert page_plan(35, 30, 100) == (33, 1, 1)  # items 33..65
    assert page_plan(0, 100, 99) == (99, 0, 1)
    assert page_plan(0, 0, 100) == (1, 0, 0)
