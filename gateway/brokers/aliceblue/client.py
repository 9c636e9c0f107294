"""Raw HTTP for Alice Blue ANT API v2 (``{base}/open-api/od/v1/``): one method per endpoint.

Session: ``vendor/getUserDetails`` with ``checkSum`` = SHA-256 hex of ``userId + authCode +
apiSecret`` answers ``userSession``, sent as ``Authorization: Bearer <userSession>`` on every later
call. A call refused for the session (HTTP 401 or EC087) logs in again and is sent once more:
the broker refused it before doing anything, so this is not a blind retry of a write.

Methods return the envelope's ``result`` list (``[]`` for the "empty" codes EC916 / EC920 / EC922 /
EC926). Reads go through ``HttpClient.read`` (retried), order writes through ``HttpClient.write``
(sent once). Credentials: ``user_id``, ``auth_code``, ``api_secret`` (or a ready ``user_session``).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any
from urllib.parse import urljoin

from ...config import ConnectionConfig
from ...domain.errors import AuthenticationError, BadResponse
from ..http import HttpClient, HttpResponse
from ..pacing import PacingRules, Window
from ..scheduler import SessionScheduler
from .errors import SESSION_CODES, is_empty, map_error

__all__ = ["DEFAULT_CONTRACT_MASTER_URL", "AliceBlueClient"]

DEFAULT_CONTRACT_MASTER_URL = "https://v2api.aliceblueonline.com/restpy/contract_master"


#: aliceblue.md: 1800 requests per 15 minutes (and never more than 90 in any 47 s, so a burst cannot
#: spend the quarter hour's allowance at once)
DOCUMENTED_PACING = PacingRules((Window(90, 47.0), Window(1800, 900.0)))


class AliceBlueClient:
    """One Alice Blue login (one ``clientId``) over one aiohttp session."""

    def __init__(self, config: ConnectionConfig, scheduler: SessionScheduler | None = None) -> None:
        self.config = config
        self.http = HttpClient(config, map_error, scheduler, headers={"Accept": "application/json"},
                               auth_headers=self._auth_headers)
        # the contract master is public and may live on another host: never send the session there
        self.public = HttpClient(config, map_error, self.http.scheduler, headers={"Accept": "application/json"})
        self.session_token: str | None = config.credential("user_session")
        self.client_id: str | None = config.credential("user_id")
        self.logins = 0
        self._login_lock = asyncio.Lock()

    @property
    def calls(self) -> int:
        return self.http.calls + self.public.calls

    async def close(self) -> None:
        await self.http.close()
        await self.public.close()

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session_token}"} if self.session_token else {}

    # -- session --------------------------------------------------------------------------
    def checksum(self) -> str:
        user_id, auth_code, secret = (self.config.credential(k) for k in ("user_id", "auth_code", "api_secret"))
        if not (user_id and auth_code and secret):
            raise AuthenticationError("Alice Blue needs the credentials user_id, auth_code and api_secret")
        return hashlib.sha256((user_id + auth_code + secret).encode()).hexdigest()

    async def vendor_get_user_details(self, checksum: str) -> dict[str, Any]:
        """POST vendor/getUserDetails ``{"checkSum"}`` (no auth header) → ``{stat, clientId, userSession}``."""
        response = await self.public.read("POST", self.http.url("vendor/getUserDetails"),
                                          json_body={"checkSum": checksum})
        body = response.body
        if not isinstance(body, dict) or not body.get("userSession") or not body.get("clientId"):
            raise BadResponse("vendor/getUserDetails: no userSession / clientId in the answer")
        return body

    async def login(self, stale: str | None = None) -> None:
        """Log in unless another task already replaced the ``stale`` session."""
        async with self._login_lock:
            if self.session_token is not None and self.session_token != stale:
                return
            body = await self.vendor_get_user_details(self.checksum())
            self.session_token = str(body["userSession"])
            self.client_id = str(body["clientId"])
            self.logins += 1

    async def _call(self, kind: str, method: str, path: str, json_body: Any = None) -> list[Any]:
        if self.session_token is None:
            await self.login()
        for attempt in (1, 2):
            token = self.session_token
            send = self.http.read if kind == "read" else self.http.write
            try:
                response = await send(method, path, json_body=json_body)
            except AuthenticationError as exc:
                if attempt == 2 or exc.broker_code not in SESSION_CODES or self.config.credential("auth_code") is None:
                    raise
                await self.login(stale=token)
                continue
            return self._result(response, path)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _result(response: HttpResponse, path: str) -> list[Any]:
        body = response.body
        if is_empty(body):
            return []
        if not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise BadResponse(f"{path}: expected an Alice Blue envelope with a result list")
        return list(body["result"])

    # -- orders ---------------------------------------------------------------------------
    async def orders_placeorder(self, items: list[dict[str, Any]]) -> list[Any]:
        """POST orders/placeorder (a JSON array) → one ``{brokerOrderId, requestTime}`` or
        ``{status: "Not_Ok", message: "EC…"}`` per item. Never retried."""
        return await self._call("write", "POST", "orders/placeorder", items)

    async def orders_modify(self, body: dict[str, Any]) -> list[Any]:
        """POST orders/modify → ``[{brokerOrderId, requestTime}]``. Never retried."""
        return await self._call("write", "POST", "orders/modify", body)

    async def orders_cancel(self, broker_order_id: str) -> list[Any]:
        """POST orders/cancel ``{"brokerOrderId"}``. Never retried."""
        return await self._call("write", "POST", "orders/cancel", {"brokerOrderId": broker_order_id})

    async def orders_book(self) -> list[Any]:
        """GET orders/book: today's orders (``[]`` for EC916)."""
        return await self._call("read", "GET", "orders/book")

    async def orders_history(self, broker_order_id: str) -> list[Any]:
        """POST orders/history ``{"brokerOrderId"}``: the order's states."""
        return await self._call("read", "POST", "orders/history", {"brokerOrderId": broker_order_id})

    async def orders_trades(self) -> list[Any]:
        """GET orders/trades (``[]`` for EC926)."""
        return await self._call("read", "GET", "orders/trades")

    async def orders_positions_sqroff(self, items: list[dict[str, Any]]) -> list[Any]:
        """POST orders/positions/sqroff (an array of old-style items). Never retried."""
        return await self._call("write", "POST", "orders/positions/sqroff", items)

    # -- portfolio ------------------------------------------------------------------------
    async def positions(self) -> list[Any]:
        """GET positions (``[]`` for EC920)."""
        return await self._call("read", "GET", "positions")

    async def holdings(self, product: str) -> list[Any]:
        """GET holdings/{CNC|MTF} (``[]`` for EC922)."""
        return await self._call("read", "GET", f"holdings/{product}")

    async def conversion(self, body: dict[str, Any]) -> list[Any]:
        """POST conversion. Never retried."""
        return await self._call("write", "POST", "conversion", body)

    async def limits(self) -> list[Any]:
        """GET limits/ (the trailing slash is part of the path)."""
        return await self._call("read", "GET", "limits/")

    async def profile(self) -> list[Any]:
        """GET profile/ (the trailing slash is part of the path)."""
        return await self._call("read", "GET", "profile/")

    async def contract_master(self, exchange: str) -> list[dict[str, Any]]:
        """GET {contract_master_url}?exch=NSE → the rows under ``{"NSE": [...]}`` (no auth).

        ``options["contract_master_url"]`` overrides the public URL; a path starting with ``/``
        is taken relative to the connection's host (the sandbox serves it there)."""
        url = str(self.config.options.get("contract_master_url", DEFAULT_CONTRACT_MASTER_URL))
        if url.startswith("/"):
            url = urljoin(self.config.base_url, url)
        response = await self.public.read("GET", f"{url}?exch={exchange}")
        body = response.body
        rows = body.get(exchange) if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise BadResponse(f"contract master for {exchange}: no {exchange!r} list")
        return rows
