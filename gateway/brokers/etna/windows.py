"""Reading ETNA lists: every page (``read_all``) or only the pages under a Relay window
(``read_window``).

ETNA pages are ``pageNumber`` (0-based) × ``pageSize`` (at most 100 for orders, 99 for positions)
of a list sorted by ``sortField`` / ``desc`` and narrowed by ``filter``; a ``PagingResult`` says the
filtered list's size in ``TotalCount``. A window ``[offset, offset + limit)`` is read as the one
page that covers it when some page size does (:func:`page_plan`), else as the run of full-size
pages over it, fetched after the first page has told the total: the number of calls depends on
the window, never on the length of the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..http import HttpResponse
from .parsing import parse_page, parse_total

__all__ = ["ListSpec", "page_plan", "read_all", "read_window"]

_MAX_PAGES = 10_000
Fetch = Callable[..., Awaitable[HttpResponse]]


@dataclass(frozen=True, slots=True)
class ListSpec:
    """One ETNA list endpoint: its client method, largest page, and the order it is read in."""

    fetch: Fetch
    max_page: int
    sort_field: str
    desc: bool


def page_plan(offset: int, limit: int, max_page: int) -> tuple[int, int, int]:
    """``(page_size, first_page, last_page)`` covering ``[offset, offset + limit)``: one page of the
    smallest size that covers the window when there is one, else ``max_page``-sized pages. An
    empty window reads one item (for the total)."""
    if limit <= 0:
        return 1, offset, offset
    for size in range(limit, max_page + 1):
        if offset // size == (offset + limit - 1) // size:
            return size, offset // size, offset // size
    return max_page, offset // max_page, (offset + limit - 1) // max_page


async def _page(spec: ListSpec, account: str, number: int, size: int, expression: str | None) -> HttpResponse:
    return await spec.fetch(account, page_number=number, page_size=size, sort_field=spec.sort_field,
                            desc=spec.desc, filter=expression)


async def read_all(spec: ListSpec, account: str, expression: str | None, *, page_size: int | None = None,
                   stop: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """Every item of the list, page after page (``stop``: end after the page where it holds);
    an item seen twice (the list moved between pages) is kept once."""
    size = page_size or spec.max_page
    items: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for number in range(_MAX_PAGES):
        page, more = parse_page((await _page(spec, account, number, size, expression)).body, size)
        for raw in page:
            if raw.get("Id") not in seen:
                seen.add(raw.get("Id"))
                items.append(raw)
        if not more or not page or (stop is not None and any(stop(raw) for raw in page)):
            break
    return items


async def read_window(spec: ListSpec, account: str, expression: str | None, offset: int, limit: int
                      ) -> tuple[list[dict[str, Any]], int] | None:
    """The items at ``[offset, offset + limit)`` of the list and its ``TotalCount``; ``None`` when
    ETNA answers a bare array (no total: the caller reads the whole list)."""
    size, first, last = page_plan(offset, limit, spec.max_page)
    body = (await _page(spec, account, first, size, expression)).body
    total = parse_total(body)
    if total is None:
        return None
    items, _ = parse_page(body, size)
    last = min(last, max(total - 1, 0) // size)
    if last > first:
        rest = await asyncio.gather(*(_page(spec, account, n, size, expression) for n in range(first + 1, last + 1)))
        for response in rest:
            items.extend(parse_page(response.body, size)[0])
    skip = offset - first * size
    return items[skip:skip + max(limit, 0)], total
