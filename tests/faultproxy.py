"""A fault-injecting HTTP proxy on loopback, in front of one venue (issue #11).

The gateway talks to the proxy as it would to the broker; the proxy forwards to the venue and, for a
chosen share of requests (seeded, so a run can be repeated), does what real networks and proxies do:

* ``timeout``: holds the request without forwarding it, and never answers (the client times out);
* ``timeout_after``: forwards the request, then never answers;
* ``reset_before``: closes the connection without forwarding the request;
* ``reset_after``: forwards the request (the venue acts on it), then closes the connection unanswered;
* ``truncated``: forwards, then answers the venue's status with half of its body;
* ``non_json``: forwards, then answers 200 with an HTML page;
* ``error_5xx``: forwards, then answers 502 with an HTML page (the venue acted; the caller cannot tell);
* ``status_5xx``: answers 503 without forwarding;
* ``rate_limited``: answers 429 with ``Retry-After`` without forwarding;
* ``wrong_shape``: forwards, then answers 200 with JSON of a shape no broker sends (``[{"x": null}]``);
* ``slow``: waits ``delay`` seconds, then forwards and answers as the venue did.

``only`` restricts the faults to requests whose ``"METHOD /path"`` starts with one of its prefixes;
``limit`` caps how many faults are injected in all; ``counts`` says how many of each kind were,
``seen`` lists the ``"METHOD /path"`` of every request in arrival order, and ``most_at_once`` is the
largest number of requests the proxy held at one time. WebSockets are not proxied (point a connection's
``ws_url`` at the venue itself).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

__all__ = ["KINDS", "FaultProxy"]

KINDS = ("timeout", "timeout_after", "reset_before", "reset_after", "truncated", "non_json", "error_5xx",
         "status_5xx", "rate_limited", "wrong_shape", "slow")
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"}
_HTML = "<html><body><h1>{status}</h1><p>upstream hiccup</p></body></html>"


@dataclass
class FaultProxy:
    """Forward to ``target`` (a venue's base URL); inject ``rates`` (kind → share of requests)."""

    target: str
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    only: Sequence[str] = ()
    retry_after: float = 1.0
    hold: float = 120.0
    delay: float = 1.0
    limit: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    seen: list[str] = field(default_factory=list)
    forwarded: int = 0
    at_once: int = 0
    most_at_once: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self._rng = random.Random(self.seed)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""
        self._origin = self.target.split("://", 1)[0] + "://" + self.target.split("://", 1)[1].split("/", 1)[0]
        self._prefix = "/" + self.target.split("://", 1)[1].split("/", 1)[1] if "/" in self.target.split("://", 1)[1] else "/"

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False)
        self.url = f"http://127.0.0.1:{port}{self._prefix}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _pick(self, method: str, path: str) -> str | None:
        if self.only and not any(f"{method} {path}".startswith(p) for p in self.only):
            return None
        if self.limit is not None and sum(self.counts.values()) >= self.limit:
            return None
        roll = self._rng.random()
        for kind in KINDS:
            share = self.rates.get(kind, 0.0)
            if roll < share:
                return kind
            roll -= share
        return None

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        # the client's Host goes on, as a reverse proxy sends it (nginx ``proxy_set_header Host $host``), so
        # the links a venue builds from it (lemon's ``next`` page) point at the proxy, not past it
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["Host"] = request.host
        url = self._origin + request.rel_url.raw_path_qs  # as sent: an encoded "#" stays encoded
        async with self._session.request(request.method, url, headers=headers, data=body or None,
                                         allow_redirects=False) as resp:
            payload = await resp.read()
            self.forwarded += 1
            return resp.status, {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}, payload

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            return await self._serve(request)
        finally:
            self.at_once -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(f"{request.method} {request.path}")
        kind = self._pick(request.method, request.path)
        if kind is not None:
            self.counts[kind] += 1
        if kind == "timeout":
            await asyncio.sleep(self.hold)
            return self._reset(request)  # never forwarded, as documented (``timeout_after`` forwards)
        if kind == "slow":
            await asyncio.sleep(self.delay)
        if kind == "reset_before":
            return self._reset(request)
        if kind == "status_5xx":
            return web.Response(status=503, text=_HTML.format(status="503 Service Unavailable"), content_type="text/html")
        if kind == "rate_limited":
            return web.Response(status=429, text=_HTML.format(status="429 Too Many Requests"), content_type="text/html",
                                headers={"Retry-After": f"{self.retry_after:g}"})
        if self._session is None or self._session.closed:
            return self._reset(request)  # the proxy is stopping
        status, headers, payload = await self._forward(request, body)
        if kind == "timeout_after":
            await asyncio.sleep(self.hold)
        if kind == "reset_after":
            return self._reset(request)
        if kind == "truncated":
            return web.Response(status=status, body=payload[: max(len(payload) // 2, 1)],
                                content_type="application/json")
        if kind == "non_json":
            return web.Response(status=200, text=_HTML.format(status="Welcome"), content_type="text/html")
        if kind == "wrong_shape":
            return web.json_response([{"x": None}])
        if kind == "error_5xx":
            return web.Response(status=502, text=_HTML.format(status="502 Bad Gateway"), content_type="text/html")
        return web.Response(status=status, body=payload, headers=headers)

    @staticmethod
    def _reset(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()  # RST: the client reads a reset connection, no answer
        raise asyncio.CancelledError  # nothing more to send on this connection
