"""ETNA list paging: ``pageNumber`` (0-based), ``pageSize`` (capped per list), ``sortField``,
``desc`` and ``filter``, answered with a ``PagingResult`` envelope ``{Result, NextPageLink,
PreviousPageLink, TotalCount}``.

As on the real API, ``NextPageLink`` / ``PreviousPageLink`` are absolute URLs that carry only
``pageNumber`` and ``pageSize`` (the filter and sort are not repeated), and ``""`` when absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from .filters import FilterError, parse_filter
from .wire import EtnaError

__all__ = ["Page", "page"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    number: int
    size: int
    total: int

    def envelope(self, request: Request, resources: list[dict[str, Any]]) -> dict[str, Any]:
        base = str(request.url.replace(query=""))

        def link(n: int) -> str:
            return f"{base}?pageNumber={n}&pageSize={self.size}"

        has_next = (self.number + 1) * self.size < self.total
        return {"Result": resources, "NextPageLink": link(self.number + 1) if has_next else "",
                "PreviousPageLink": link(self.number - 1) if self.number > 0 else "", "TotalCount": self.total}


def _int(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise EtnaError(400) from None


def page(request: Request, items: Sequence[T], record: Callable[[T], Mapping[str, Any]], *,
         max_size: int, fields: frozenset[str]) -> Page:
    """Filter, sort and cut ``items`` per the request's query; 400 for a bad parameter or filter."""
    q = request.query_params
    number, size = _int(q.get("pageNumber"), 0), _int(q.get("pageSize"), 10)
    if number < 0 or not 1 <= size <= max_size:
        raise EtnaError(400, {"Message": f"pageSize must be between 1 and {max_size}"})
    try:
        predicate = parse_filter(q.get("filter"), fields)
    except FilterError as exc:
        raise EtnaError(400, {"Message": f"The filter is invalid: {exc}"}) from None
    sort = (q.get("sortField") or "Id").lower()
    if sort not in fields:
        raise EtnaError(400, {"Message": f"Unknown sort field {q.get('sortField')!r}"})
    desc = (q.get("desc") or "false").lower()
    if desc not in ("true", "false"):
        raise EtnaError(400)
    rows = [(record(item), item) for item in items]
    kept = [(rec, item) for rec, item in rows if predicate(rec)]
    key = next((k for k in kept[0][0] if k.lower() == sort), "Id") if kept else "Id"
    kept.sort(key=lambda pair: (pair[0][key], pair[0]["Id"]), reverse=desc == "true")
    chosen = [item for _, item in kept[number * size:(number + 1) * size]]
    return Page(chosen, number, size, len(kept))
