"""The upstream HTTP client every adapter's ``client.py`` builds on.

One aiohttp session per connection; connect and total timeouts on every call; an optional client-side
rate limit (aiolimiter); reads retried with exponential backoff and jitter on timeouts, connection
resets, 429 and 5xx, honouring ``Retry-After`` (tenacity); writes never retried. JSON numbers with a
fraction are parsed as ``Decimal`` so no float reaches the domain, and ``Decimal`` values in request
bodies are written as exact number literals (simplejson), so none leaves it either.

Errors raised (``gateway.domain.errors``): ``RequestTimeout``, ``BrokerNotAvailable``,
``RateLimitExceeded``, ``BadResponse``, and whatever the adapter's ``map_error`` makes of a broker
error body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import simplejson
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from ..config import ConnectionConfig
from ..domain.errors import BadResponse, BrokerNotAvailable, GatewayError, RateLimitExceeded, RequestTimeout
from ..telemetry import upstream_trace_configs

__all__ = ["ErrorMapper", "HttpClient", "HttpResponse"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A decoded upstream answer: ``body`` is the JSON value (``None`` for an empty body)."""

    status: int
    headers: Mapping[str, str]
    body: Any
    url: str


#: (response) → the error to raise, or ``None`` when the response is a success.
ErrorMapper = Callable[[HttpResponse], GatewayError | None]


def _dumps(value: Any) -> str:
    """Request bodies: ``Decimal`` becomes an exact JSON number literal (``12.34``), never a float."""
    return str(simplejson.dumps(value, use_decimal=True, separators=(",", ":")))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class _WaitRetryAfter(wait_base):
    """Wait what the broker's ``Retry-After`` says (capped), else exponential backoff with jitter."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.backoff = wait_exponential_jitter(multiplier=0.1, max=cap, jitter=0.1)

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimitExceeded) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return float(self.backoff(retry_state))


class _RetryableRead(Exception):
    """Internal: a read failure worth another attempt (wraps the gateway error)."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(str(error))
        self.error = error


class HttpClient:
    """aiohttp wrapper for one broker connection.

    Args:
        config: the connection's configuration (base URL, timeouts, retries, rate limit, TLS).
        map_error: turns a broker error response into a gateway error (the adapter's ``errors.py``).
        headers: headers sent on every request (authorisation is added by ``auth_headers``).
        auth_headers: called before each request for the current auth headers (tokens that renew).
        limiter: a shared limiter, else one built from ``config.rate_limit`` / ``config.rate_burst``, else
            from ``default_rate`` (the broker's documented limit: requests per second and burst).
        endpoint_limiter: ``(method, path) → AsyncLimiter | None``: an endpoint's own pacing, awaited
            on every attempt after the connection's limiter (IBKR paces some endpoints separately).
    """

    def __init__(self, config: ConnectionConfig, map_error: ErrorMapper, *,
                 headers: Mapping[str, str] | None = None,
                 auth_headers: Callable[[], Mapping[str, str]] | None = None,
                 limiter: AsyncLimiter | None = None,
                 default_rate: tuple[float, int] | None = None,
                 endpoint_limiter: Callable[[str, str], AsyncLimiter | None] | None = None) -> None:
        self.config = config
        self.connection = config.name
        self.base_url = config.base_url
        self.map_error = map_error
        self.headers = dict(headers or {})
        self.auth_headers = auth_headers
        self.limiter = limiter or _limiter(config.rate_limit, config.rate_burst, default_rate)
        self.endpoint_limiter = endpoint_limiter
        self._session: aiohttp.ClientSession | None = None
        self.calls = 0

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.config.verify_tls:
            return True
        return False

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout, connect=self.config.connect_timeout)
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=50)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector,
                                                  json_serialize=_dumps,
                                                  trace_configs=upstream_trace_configs(self.config))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def url(self, path: str) -> str:
        """``path`` relative to the base URL (no leading slash), or an absolute URL kept as is."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path.lstrip("/")

    async def read(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                   headers: Mapping[str, str] | None = None) -> HttpResponse:
        """A call that changes nothing upstream: retried per the connection's retry policy."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_RetryableRead),
            stop=stop_after_attempt(self.config.read_retries + 1),
            wait=_WaitRetryAfter(self.config.retry_max_wait),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        return await self._once(method, path, params=params, json_body=json_body, headers=headers)
                    except (RequestTimeout, BrokerNotAvailable) as exc:
                        raise _RetryableRead(exc) from exc
        except _RetryableRead as wrapped:
            raise wrapped.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def write(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                    headers: Mapping[str, str] | None = None) -> HttpResponse:
        """A call that may change state upstream (an order write): sent exactly once.

        A ``RequestTimeout`` or ``BrokerNotAvailable`` from here means the outcome is unknown: the
        caller reconciles (look the order up by its client order id), it never resends blindly.
        """
        return await self._once(method, path, params=params, json_body=json_body, headers=headers)

    async def _once(self, method: str, path: str, *, params: Any, json_body: Any,
                    headers: Mapping[str, str] | None) -> HttpResponse:
        url = self.url(path)
        hdrs = dict(self.headers)
        if self.auth_headers is not None:
            hdrs.update(self.auth_headers())
        if headers:
            hdrs.update(headers)
        if self.limiter is not None:
            await self.limiter.acquire()
        if self.endpoint_limiter is not None:
            own = self.endpoint_limiter(method, path)
            if own is not None:
                await own.acquire()
        self.calls += 1
        try:
            async with self.session.request(method, url, params=params, json=json_body, headers=hdrs) as resp:
                text = await resp.text()
                response = HttpResponse(resp.status, resp.headers, self._decode(text, resp.status, url), url)
        except TimeoutError as exc:
            raise RequestTimeout(f"{method} {self._path(url)} timed out after {self.config.timeout:g}s",
                                 connection=self.connection) from exc
        except aiohttp.ClientError as exc:
            raise BrokerNotAvailable(f"{method} {self._path(url)} failed: {type(exc).__name__}",
                                     connection=self.connection) from exc
        error = self.map_error(response)
        if error is not None:
            error.with_connection(self.connection)
            if isinstance(error, RateLimitExceeded) and error.retry_after is None:
                error.retry_after = _retry_after(response.headers)
            raise error
        if response.status >= 500:
            raise BrokerNotAvailable(f"{method} {self._path(url)} answered HTTP {response.status}",
                                     connection=self.connection)
        if response.status == 429:
            raise RateLimitExceeded(f"{method} {self._path(url)} rate limited", connection=self.connection,
                                    retry_after=_retry_after(response.headers))
        return response

    def _decode(self, text: str, status: int, url: str) -> Any:
        if not text.strip():
            return None
        try:
            return json.loads(text, parse_float=Decimal)
        except ValueError:
            if status >= 500:
                return None  # an HTML error page from a proxy: the status tells what happened
            raise BadResponse(f"non-JSON answer from {self._path(url)} (HTTP {status})",
                              connection=self.connection) from None

    def _path(self, url: str) -> str:
        """The URL without scheme, host and query, for messages (never credentials)."""
        rest = url.split("://", 1)[-1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return path.split("?", 1)[0]


def _limiter(rate: float | None, burst: int | None, default: tuple[float, int] | None) -> AsyncLimiter | None:
    """A leaky bucket of ``burst`` requests draining at ``rate`` per second."""
    if rate is None:
        if default is None:
            return None
        rate, default_burst = default
        burst = burst or default_burst
    burst = burst or max(1, round(rate))
    return AsyncLimiter(burst, burst / rate)


async def gather_settled(*aws: Any) -> list[Any]:
    """``asyncio.gather`` that returns exceptions in place of results (one failure spoils nothing)."""
    return list(await asyncio.gather(*aws, return_exceptions=True))
