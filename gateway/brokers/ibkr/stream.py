"""``watch_orders`` over the Client Portal WebSocket (``wss://…/v1/api/ws``, topic ``sor``; ibkr.md §11).

After the server's ``sts`` frame says the session is authenticated, ``sor+{}`` subscribes. The first
``sor`` frame carries every order in full, later ones only the changed fields with ``acct`` and
``orderId``: items are merged per order id, and every merged order of the watched account is parsed
and yielded (group orders are read under the master, as over REST). ``{"error": "unable to
subscribe", "topic": "sor"}`` is answered by ``GET iserver/accounts`` and a new subscription.

When the socket cannot be opened, closes, or stays silent for ``ws_silence`` seconds (IBKR sends a
heartbeat every ~10 s), the account's orders are read over REST (``fetch_orders``) and yielded, and
the socket is tried again after ``ws_retry`` seconds; IBKR replays nothing on reconnect, so that
REST read is also what re-synchronises. The iterator never ends by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp

from ... import wire_numbers
from ...domain.errors import BadResponse, GatewayError
from ...domain.keys import AccountKey
from ...domain.models import Order
from . import first_seen
from .parsing import parse_live_order

if TYPE_CHECKING:
    from .adapter import IbkrAdapter

__all__ = ["watch_orders"]

log = logging.getLogger(__name__)


class _Down(Exception):
    """The socket is not usable (closed, logged out)."""


def ws_url(base_url: str) -> str:
    """``http(s)://host/v1/api/`` → ``ws(s)://host/v1/api/ws``."""
    return base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/ws"


async def watch_orders(adapter: IbkrAdapter, account: AccountKey) -> AsyncIterator[Order]:
    """Orders of ``account`` as they change (see the module docstring)."""
    while True:
        try:
            async for order in _socket(adapter, account):
                yield order
        except (aiohttp.ClientError, OSError, TimeoutError, _Down, GatewayError) as exc:
            log.info("IBKR %s order socket down (%s); reading orders over REST", adapter.connection, exc)
        try:
            for order in await adapter.fetch_orders(account):
                yield order
        except GatewayError as exc:
            log.info("IBKR %s: REST fallback for %s failed: %s", adapter.connection, account.account_number, exc)
        await asyncio.sleep(adapter.ws_retry)


async def _socket(adapter: IbkrAdapter, account: AccountKey) -> AsyncIterator[Order]:
    if adapter.session.master is None:
        adapter._learn(await adapter.client.accounts())
    cookies = {"api": adapter.ws_session} if adapter.ws_session else None
    ssl: Any = bool(adapter.config.verify_tls)
    if hasattr(aiohttp, "ClientWSTimeout"):  # aiohttp >= 3.10
        timeouts: dict[str, Any] = {"timeout": aiohttp.ClientWSTimeout(ws_receive=adapter.ws_silence)}
    else:  # pragma: no cover
        timeouts = {"receive_timeout": adapter.ws_silence}
    items: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(cookies=cookies) as http, \
            http.ws_connect(adapter.ws_url, ssl=ssl, **timeouts) as ws:
        subscribed = False
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                frame = wire_numbers.loads(message.data)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            topic = frame.get("topic")
            if frame.get("error"):
                if topic == "sor":  # "unable to subscribe": retry after GET iserver/accounts
                    await adapter.client.accounts()
                    await ws.send_str("sor+{}")
                continue
            if topic == "sts":
                if not (frame.get("args") or {}).get("authenticated"):
                    adapter._authenticated(False)
                    raise _Down("the brokerage session is not authenticated")
                if not subscribed:
                    await ws.send_str("sor+{}")
                    subscribed = True
            elif topic == "sor":
                for order in _merge(adapter, account, items, frame.get("args") or []):
                    yield order
    raise _Down("closed by the server")


def _merge(adapter: IbkrAdapter, account: AccountKey, items: dict[str, dict[str, Any]],
           args: list[Any]) -> list[Order]:
    out: list[Order] = []
    for arg in args:
        if not isinstance(arg, dict) or "orderId" not in arg:
            continue
        key = str(arg["orderId"])
        merged = items[key] = {**items.get(key, {}), **arg}
        if str(merged.get("acct")) != account.account_number:
            continue
        try:
            out.append(parse_live_order(adapter.connection, merged, adapter.session.groups))
        except BadResponse:
            continue  # a delta of an order whose full form this socket never saw: REST resyncs it
    return first_seen.stamp(out)
