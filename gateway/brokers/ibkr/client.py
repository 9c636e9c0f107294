"""Raw IBKR Client Portal calls, one method per endpoint (paths relative to ``/v1/api/``).

Reads go through ``HttpClient.read`` (retried), order writes through ``write`` (sent once).
Every call gets its permit from the connection's scheduler (IBKR's pacing, :mod:`.pacing`), on
every attempt. ``on_response`` sees every answer (the adapter tracks whether the session is
authenticated from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...config import ConnectionConfig
from ...domain.errors import GatewayError
from ..http import HttpClient, HttpResponse
from ..scheduler import SessionScheduler
from .errors import map_error

__all__ = ["IbkrClient"]


class _ObservedHttp(HttpClient):
    """HttpClient with an observer of every answer."""

    def __init__(self, config: ConnectionConfig, scheduler: SessionScheduler | None,
                 on_response: Callable[[HttpResponse, GatewayError | None], None]) -> None:
        super().__init__(config, self._map, scheduler)
        self.on_response = on_response

    def _map(self, response: HttpResponse) -> GatewayError | None:
        error = map_error(response)
        self.on_response(response, error)
        return error


class IbkrClient:
    """One method per CP endpoint; answers are the decoded JSON bodies."""

    def __init__(self, config: ConnectionConfig, scheduler: SessionScheduler | None,
                 on_response: Callable[[HttpResponse, GatewayError | None], None]) -> None:
        self.http = _ObservedHttp(config, scheduler, on_response)

    async def close(self) -> None:
        await self.http.close()

    @property
    def calls(self) -> int:
        return self.http.calls

    # -- session --------------------------------------------------------------------------
    async def auth_status(self) -> Any:
        """POST iserver/auth/status → ``{"authenticated": bool, "connected": bool, ...}``"""
        return (await self.http.read("POST", "iserver/auth/status")).body

    async def tickle(self) -> Any:
        """POST tickle → ``{"session": ..., "iserver": {"authStatus": {...}}}``"""
        return (await self.http.read("POST", "tickle")).body

    # -- accounts -------------------------------------------------------------------------
    async def accounts(self) -> Any:
        """GET iserver/accounts (the pre-flight) → ``{"accounts", "aliases", "groups", "selectedAccount", ...}``"""
        return (await self.http.read("GET", "iserver/accounts")).body

    async def switch_account(self, account: str) -> Any:
        """POST iserver/account ``{"acctId"}`` → ``{"set": true, ...}`` or ``{"success": "Account already set"}``.
        Idempotent, so sent as a read (retried)."""
        return (await self.http.read("POST", "iserver/account", json_body={"acctId": account})).body

    async def portfolio_accounts(self) -> Any:
        """GET portfolio/accounts → list of account objects"""
        return (await self.http.read("GET", "portfolio/accounts")).body

    async def portfolio_subaccounts(self) -> Any:
        """GET portfolio/subaccounts → list of account objects (FA)"""
        return (await self.http.read("GET", "portfolio/subaccounts")).body

    async def positions(self, account: str, page: int) -> Any:
        """GET portfolio/{accountId}/positions/{pageId} → up to 100 positions, ``[]`` past the end"""
        return (await self.http.read("GET", f"portfolio/{account}/positions/{page}")).body

    async def portfolio_ledger(self, account: str) -> Any:
        """GET portfolio/{accountId}/ledger → ``{"USD": {"cashbalance", ...}, "BASE": {...}}``"""
        return (await self.http.read("GET", f"portfolio/{account}/ledger")).body

    async def allocation_groups(self) -> Any:
        """GET iserver/account/allocation/group → ``{"data": [{"allocation_method", "size", "name"}]}``"""
        return (await self.http.read("GET", "iserver/account/allocation/group")).body

    async def allocation_group(self, name: str) -> Any:
        """POST iserver/account/allocation/group/single ``{"name"}`` → ``{"name", "accounts", "default_method"}``"""
        return (await self.http.read("POST", "iserver/account/allocation/group/single", json_body={"name": name})).body

    async def allocatable_accounts(self) -> Any:
        """GET iserver/account/allocation/accounts → ``{"accounts": [{"name", "data": [{"key":
        "NetLiquidation" | "AvailableEquity", "value": "2134.76"}]}]}`` (every sub-account at once)"""
        return (await self.http.read("GET", "iserver/account/allocation/accounts")).body

    async def secdef_search(self, symbol: str, *, name: bool = False) -> Any:
        """GET iserver/secdef/search ``?symbol=&name=&secType=STK`` → list of contracts"""
        params = {"symbol": symbol, "secType": "STK"}
        if name:
            params["name"] = "true"
        return (await self.http.read("GET", "iserver/secdef/search", params=params)).body

    # -- orders ---------------------------------------------------------------------------
    async def live_orders(self, *, force: bool = False) -> Any:
        """GET iserver/account/orders (selected account) → ``{"orders": [...], "snapshot": bool}``"""
        params = {"force": "true"} if force else None
        return (await self.http.read("GET", "iserver/account/orders", params=params)).body

    async def order_status(self, order_id: str) -> Any:
        """GET iserver/account/order/status/{orderId} → one order (selected account only)"""
        return (await self.http.read("GET", f"iserver/account/order/status/{order_id}")).body

    async def place_orders(self, account: str, orders: list[dict[str, Any]]) -> Any:
        """POST iserver/account/{accountId}/orders ``{"orders": [...]}`` → accepted / question array"""
        return (await self.http.write("POST", f"iserver/account/{account}/orders", json_body={"orders": orders})).body

    async def reply(self, reply_id: str, confirmed: bool) -> Any:
        """POST iserver/reply/{replyId} ``{"confirmed": bool}`` → accepted / question array"""
        return (await self.http.write("POST", f"iserver/reply/{reply_id}", json_body={"confirmed": confirmed})).body

    async def modify_order(self, account: str, order_id: str, order: dict[str, Any]) -> Any:
        """POST iserver/account/{accountId}/order/{orderId} (a bare order object) → accepted / question"""
        return (await self.http.write("POST", f"iserver/account/{account}/order/{order_id}", json_body=order)).body

    async def cancel_order(self, account: str, order_id: str) -> Any:
        """DELETE iserver/account/{accountId}/order/{orderId} → ``{"msg", "order_id", "conid", "account"}``"""
        return (await self.http.write("DELETE", f"iserver/account/{account}/order/{order_id}")).body
