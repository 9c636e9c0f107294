"""Raw lemon Trading API v1 calls, one method per endpoint (lemon.md §4).

Money stays in lemon's integers here; ``parsing.py`` converts. Lists follow ``next`` to the end
unless a single page is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ...config import ConnectionConfig
from ...domain.errors import BadResponse
from ..http import HttpClient
from ..pacing import PacingRules, Window
from ..scheduler import SessionScheduler
from .errors import map_error

__all__ = ["DATA_URL", "LemonClient", "Page", "data_url"]

#: lemon's market-data API (instruments with their tickers), beside the trading API
DATA_URL = "https://data.lemon.markets/v1/"


def data_url(config: ConnectionConfig) -> str:
    """The market-data base URL: option ``data_url``, else lemon's own for a lemon.markets trading
    host, else the trading base URL (a proxy or the sandbox serving both resources)."""
    explicit = config.options.get("data_url")
    if explicit:
        return str(explicit)
    host = urlsplit(config.base_url).hostname or ""
    return DATA_URL if host == "lemon.markets" or host.endswith(".lemon.markets") else config.base_url

Page = tuple[list[dict[str, Any]], int]  # (results, total)

#: lemon.md §10: "on average 100 requests per minute, with an allowed burst to 300 requests per minute"
DOCUMENTED_PACING = PacingRules((Window(300, 60.0), Window(1000, 600.0)))


class LemonClient:
    """Bearer-authenticated client of one lemon API key (``credentials.api_key``); the market data
    use ``credentials.data_api_key`` where lemon issued a separate one, else the same key."""

    def __init__(self, config: ConnectionConfig, scheduler: SessionScheduler | None = None) -> None:
        api_key = config.credential("api_key")
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HttpClient(config, map_error, scheduler, auth_headers=lambda: self._auth)
        data_key = config.credential("data_api_key") or api_key
        self._data_auth = {"Authorization": f"Bearer {data_key}"} if data_key else {}
        # the market-data API is another service with its own limits: its own scheduler
        data_rules = (PacingRules.from_rate(config.rate_limit, config.rate_burst) if config.rate_limit is not None
                      else DOCUMENTED_PACING)
        self.data = HttpClient(config.model_copy(update={"base_url": data_url(config)}), map_error,
                               SessionScheduler(f"{config.name}:data", data_rules), auth_headers=lambda: self._data_auth)

    async def close(self) -> None:
        await self.http.close()
        await self.data.close()
        await self.data.scheduler.close()

    async def get_instruments(self, isins: list[str]) -> list[dict[str, Any]]:
        """Market data ``GET instruments?isin=A,B`` → ``results`` (``isin``, ``symbol``, ``type``, …)."""
        body = (await self.data.read("GET", "instruments", params=[("isin", ",".join(isins)),
                                                                 ("limit", "100")])).body
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise BadResponse("lemon instruments answer without results")
        return results

    @staticmethod
    def _results(body: Any) -> Any:
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise BadResponse("lemon answered without an ok envelope")
        return body.get("results")

    # GET account
    async def get_account(self) -> dict[str, Any]:
        return self._results((await self.http.read("GET", "account")).body)

    # GET positions / GET orders, one page
    async def get_page(self, resource: str, params: list[tuple[str, str]], *, limit: int, page: int) -> Page:
        body = (await self.http.read("GET", resource, params=[*params, ("limit", str(limit)),
                                                               ("page", str(page))])).body
        results = self._results(body)
        return list(results or []), int(body.get("total", len(results or [])))

    # GET positions / GET orders, every page (follows the absolute ``next`` links)
    async def get_all(self, resource: str, params: list[tuple[str, str]],
                      until: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Every page's items; with ``until``, no page after the first that holds an item it accepts
        (a search: ``GET orders`` is newest first, so a recent order is on the first page)."""
        response = await self.http.read("GET", resource, params=[*params, ("limit", "100"), ("page", "1")])
        page: list[dict[str, Any]] = list(self._results(response.body) or [])
        items = list(page)
        next_url = response.body.get("next")
        seen = {response.url}
        while next_url and not (until is not None and any(until(item) for item in page)):
            if next_url in seen:
                raise BadResponse("lemon pagination loops")
            seen.add(next_url)
            response = await self.http.read("GET", next_url)
            page = list(self._results(response.body) or [])
            items.extend(page)
            next_url = response.body.get("next")
        return items

    # GET orders/{id}
    async def get_order(self, order_id: str) -> dict[str, Any]:
        return self._results((await self.http.read("GET", f"orders/{order_id}")).body)

    # POST orders (never retried)
    async def post_orders(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._results((await self.http.write("POST", "orders", json_body=body)).body)

    # POST orders/{id}/activate (never retried)
    async def post_orders_activate(self, order_id: str, pin: str | None = None) -> None:
        await self.http.write("POST", f"orders/{order_id}/activate", json_body={"pin": pin} if pin else {})

    # DELETE orders/{id} (never retried)
    async def delete_order(self, order_id: str) -> None:
        await self.http.write("DELETE", f"orders/{order_id}")
