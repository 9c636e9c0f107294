"""Raw ETNA Trader Web API calls, one method per endpoint (paths under ``{apiURL}``).

Every call carries ``Et-App-Key`` and ``Authorization: Bearer`` (see :mod:`.auth`). A 401
``Authorization has been denied`` answer drops the token and the call is sent once more with a
fresh one (a refused call changed nothing upstream, so this is safe for writes too). Reads are
retried per the connection's policy; writes (place, replace, cancel) are sent once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...config import ConnectionConfig
from ...domain.errors import AuthenticationError
from ..http import HttpClient, HttpResponse
from ..scheduler import SessionScheduler
from .auth import TokenManager
from .errors import UNAUTHORIZED, map_error

__all__ = ["EtnaClient"]


class EtnaClient:
    def __init__(self, config: ConnectionConfig, scheduler: SessionScheduler | None = None) -> None:
        app_key = config.credential("app_key") or ""
        static = {"Et-App-Key": app_key, "Accept": "application/json"}
        self.http_auth = HttpClient(config, map_error, scheduler, headers=static)
        self.tokens = TokenManager(self.http_auth, config)
        self.http = HttpClient(config, map_error, self.http_auth.scheduler, headers=static,
                               auth_headers=self.tokens.headers)

    @property
    def calls(self) -> int:
        return self.http.calls + self.http_auth.calls

    async def close(self) -> None:
        await self.http.close()
        await self.http_auth.close()

    async def _call(self, write: bool, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    json_body: Any = None) -> HttpResponse:
        for attempt in (1, 2):
            token = await self.tokens.ensure()
            send = self.http.write if write else self.http.read
            try:
                return await send(method, path, params=params, json_body=json_body)
            except AuthenticationError as exc:
                if exc.broker_code != UNAUTHORIZED or attempt == 2:
                    raise
                self.tokens.invalidate(token)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- accounts -------------------------------------------------------------------------
    async def get_user_accounts(self, user_id: str = "@me") -> HttpResponse:
        """``GET v1.0/users/{userId}/accounts`` → array of accounts."""
        return await self._call(False, "GET", f"v1.0/users/{user_id}/accounts")

    async def get_account_info(self, account_id: str) -> HttpResponse:
        """``GET v1.0/accounts/{accountId}/info`` → the account's balance (``cash``, ``netCash``,
        ``stockBuyingPower``, …; USD numbers)."""
        return await self._call(False, "GET", f"v1.0/accounts/{account_id}/info")

    async def get_equity(self, security_id: int | str) -> HttpResponse:
        """``GET v1.0/equities/{id}`` → the security (``Symbol``, ``Currency``, ``Type``, …)."""
        return await self._call(False, "GET", f"v1.0/equities/{security_id}")

    # -- lists ----------------------------------------------------------------------------
    @staticmethod
    def _page(page_number: int, page_size: int, sort_field: str, desc: bool, filter: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"pageNumber": page_number, "pageSize": page_size, "sortField": sort_field,
                                  "desc": "true" if desc else "false"}
        if filter:
            params["filter"] = filter
        return params

    async def get_positions(self, account_id: str, *, page_number: int = 0, page_size: int = 99,
                            sort_field: str = "Id", desc: bool = False, filter: str | None = None) -> HttpResponse:
        """``GET v1.0/accounts/{accountId}/positions`` → a bare array or a PagingResult."""
        return await self._call(False, "GET", f"v1.0/accounts/{account_id}/positions",
                                params=self._page(page_number, page_size, sort_field, desc, filter))

    async def get_orders(self, account_id: str, *, page_number: int = 0, page_size: int = 100,
                         sort_field: str = "Id", desc: bool = False, filter: str | None = None) -> HttpResponse:
        """``GET v1.0/accounts/{accountId}/orders`` → PagingResult of OrderResource."""
        return await self._call(False, "GET", f"v1.0/accounts/{account_id}/orders",
                                params=self._page(page_number, page_size, sort_field, desc, filter))

    async def get_order(self, account_id: str, order_id: str) -> HttpResponse:
        """``GET v1.0/accounts/{accountId}/orders/{orderId}`` → OrderResource."""
        return await self._call(False, "GET", f"v1.0/accounts/{account_id}/orders/{order_id}")

    # -- writes ---------------------------------------------------------------------------
    async def post_orders(self, account_id: str, body: Mapping[str, Any]) -> HttpResponse:
        """``POST v1.0/accounts/{accountId}/orders`` (CreateOrderResource) → 200 OrderResource."""
        return await self._call(True, "POST", f"v1.0/accounts/{account_id}/orders", json_body=dict(body))

    async def put_order(self, account_id: str, order_id: str, body: Mapping[str, Any]) -> HttpResponse:
        """``PUT v1.0/accounts/{accountId}/orders/{orderId}`` (ModifyOrderResource) → OrderResource."""
        return await self._call(True, "PUT", f"v1.0/accounts/{account_id}/orders/{order_id}", json_body=dict(body))

    async def delete_order(self, account_id: str, order_id: str) -> HttpResponse:
        """``DELETE v1.0/accounts/{accountId}/orders/{orderId}`` → 204 No Content."""
        return await self._call(True, "DELETE", f"v1.0/accounts/{account_id}/orders/{order_id}")
