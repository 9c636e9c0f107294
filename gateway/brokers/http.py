"""The upstream HTTP client every adapter's ``client.py`` builds on.

One aiohttp session per client; every request first gets its permit from the connection's
:class:`~.scheduler.SessionScheduler` (pacing, priority, deadline) and is then sent with connect and
total timeouts no longer than what is left of the caller's deadline. Reads are retried with exponential
backoff and jitter on timeouts, connection resets, 429 and 5xx, honouring ``Retry-After`` (tenacity),
and the connection's ``timeout`` bounds the whole read, retries included (counted from when its first
attempt is sent); writes are never retried. JSON numbers with a fraction are parsed as ``Decimal`` so
no float reaches the domain, and ``Decimal`` values in request bodies are written as exact number
literals (simplejson), so none leaves it either.

Errors raised (``gateway.domain.errors``): ``RequestTimeout``, ``BrokerNotAvailable``,
``RateLimitExceeded``, ``BadResponse``, ``BrokerBusy`` (no permit before the deadline: nothing was
sent), and whatever the adapter's ``map_error`` makes of a broker error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import simplejson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .. import wire_numbers
from ..config import ConnectionConfig
from ..domain.errors import (
    BadResponse,
    BrokerBusy,
    BrokerNotAvailable,
    CircuitOpen,
    GatewayError,
    RateLimitExceeded,
    RequestTimeout,
)
from ..telemetry import upstream_trace_configs
from . import budget
from .pacing import PacingRules
from .scheduler import SessionScheduler

__all__ = ["ErrorMapper", "HttpClient", "HttpResponse", "retry_after_seconds"]

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


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); ``None`` when
    absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class _WaitRetryAfter(wait_base):
    """Wait what the broker's ``Retry-After`` says, else exponential backoff with jitter; never past
    the deadline (the stop condition gives up instead)."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.backoff = wait_exponential_jitter(multiplier=0.1, max=cap, jitter=0.1)

    def __call__(self, retry_state: Any) -> float:
        error = _error_of(retry_state)
        if isinstance(error, RateLimitExceeded) and error.retry_after is not None:
            return min(float(error.retry_after), 60.0)
        return float(self.backoff(retry_state))


class _StopAtDeadline(stop_base):
    """Give up when the next wait would end after the deadline (a ``Retry-After`` beyond it, say)."""

    def __init__(self, wait: _WaitRetryAfter, left: Callable[[], float | None]) -> None:
        self.wait = wait
        self.left = left

    def __call__(self, retry_state: Any) -> bool:
        left = self.left()
        return left is not None and self.wait(retry_state) >= left


def _error_of(retry_state: Any) -> GatewayError | None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    return exc.error if isinstance(exc, _RetryableRead) else exc if isinstance(exc, GatewayError) else None


class _RetryableRead(Exception):
    """Internal: a read failure worth another attempt (wraps the gateway error)."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(str(error))
        self.error = error


class HttpClient:
    """aiohttp wrapper for one broker connection.

    Args:
        config: the connection's configuration (base URL, timeouts, retries, TLS).
        map_error: turns a broker error response into a gateway error (the adapter's ``errors.py``).
        scheduler: the connection's scheduler (one per broker session, shared by all its clients);
            ``None`` builds a private one from ``config.rate_limit`` (for a client used on its own).
        headers: headers sent on every request (authorisation is added by ``auth_headers``).
        auth_headers: called before each request for the current auth headers (tokens that renew).
    """

    def __init__(self, config: ConnectionConfig, map_error: ErrorMapper, scheduler: SessionScheduler | None = None, *,
                 headers: Mapping[str, str] | None = None,
                 auth_headers: Callable[[], Mapping[str, str]] | None = None) -> None:
        self.config = config
        self.connection = config.name
        self.base_url = config.base_url
        self.map_error = map_error
        self.scheduler = scheduler or SessionScheduler(
            config.name, PacingRules.from_rate(config.rate_limit, config.rate_burst))
        self.headers = dict(headers or {})
        self.auth_headers = auth_headers
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
        """``path`` relative to the base URL (no leading slash), or an absolute URL (a broker's paging
        link) kept as is when it has the base URL's origin (scheme, host and port). Raises
        ``BadResponse`` for an absolute URL of another origin: the connection's credentials are sent
        to its own broker only, wherever an answer points."""
        if path.startswith(("http://", "https://")) or "://" in path.split("?", 1)[0]:
            if same_origin(path, self.base_url):
                return path
            raise BadResponse("the broker's answer links to another origin; the link is not followed (the "
                              "connection's credentials go to its own broker only)", connection=self.connection)
        return self.base_url + path.lstrip("/")

    def _relative(self, url: str) -> str:
        """The path of ``url`` under the base URL (what pacing rules name), without the query."""
        rel = url[len(self.base_url):] if url.startswith(self.base_url) else self._path(url)
        return rel.split("?", 1)[0].strip("/")

    def _left(self, spend: budget.Spending | None, first: list[float]) -> float | None:
        """Seconds this request may still take: the operation's deadline, and the connection's
        ``timeout`` as spent in this operation (or, outside one, since this read's first send)."""
        op = budget.remaining()
        if spend is not None:
            own: float | None = spend.left()
        elif first:
            own = first[0] + self.config.timeout - asyncio.get_running_loop().time()
        else:
            own = None
        return own if op is None else op if own is None else min(own, op)

    async def read(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                   headers: Mapping[str, str] | None = None) -> HttpResponse:
        """A call that changes nothing upstream: retried per the connection's retry policy within
        the connection's ``timeout`` (its time on the network in this operation, retry waits
        included) and the operation's deadline."""
        spend = budget.spending(self.connection, self.config.timeout)
        first: list[float] = []  # when the first attempt was sent (outside an operation)
        # the first attempt without tenacity's machinery (most reads succeed at once); a failure worth
        # another attempt is replayed as the retry loop's first attempt, which then waits and stops as
        # it would have
        try:
            return await self._once(method, path, params=params, json_body=json_body, headers=headers,
                                    spend=spend, first=first)
        except CircuitOpen:
            raise
        except (RequestTimeout, BrokerNotAvailable) as exc:
            failed: GatewayError | None = exc

        async def sleep(seconds: float) -> None:
            with spend.running() if spend is not None else contextlib.nullcontext():
                await asyncio.sleep(seconds)

        wait = _WaitRetryAfter(self.config.retry_max_wait)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_RetryableRead),
            stop=stop_after_attempt(1 if budget.single_attempt.get() else self.config.read_retries + 1)
            | _StopAtDeadline(wait, lambda: self._left(spend, first)),
            wait=wait,
            sleep=sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if failed is not None:  # the first attempt, made above
                        error, failed = failed, None
                        raise _RetryableRead(error) from error
                    try:
                        return await self._once(method, path, params=params, json_body=json_body, headers=headers,
                                                spend=spend, first=first)
                    except CircuitOpen:
                        raise  # refused at once: nothing to retry until the circuit lets a probe through
                    except (RequestTimeout, BrokerNotAvailable) as exc:
                        raise _RetryableRead(exc) from exc
        except _RetryableRead as wrapped:
            raise wrapped.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def write(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                    headers: Mapping[str, str] | None = None) -> HttpResponse:
        """A call that may change state upstream (an order write): sent exactly once.

        A ``RequestTimeout`` or ``BrokerNotAvailable`` from here means the outcome is unknown (unless
        its ``sent`` is false): the caller reconciles (look the order up by its client order id), it
        never resends blindly. A ``BrokerBusy`` or ``CircuitOpen`` means it was not sent. The write has
        its own ``timeout`` (within the operation's deadline) and does not spend the connection's
        time for the operation, so the look-up that reconciles a lost answer still has it.
        """
        return await self._once(method, path, params=params, json_body=json_body, headers=headers,
                                spend=None, first=[])

    async def _once(self, method: str, path: str, *, params: Any, json_body: Any,
                    headers: Mapping[str, str] | None, spend: budget.Spending | None,
                    first: list[float]) -> HttpResponse:
        url = self.url(path)
        breaker = self.scheduler.breaker
        breaker.check()  # an open circuit refuses at once, before any wait for pacing
        async with budget.upstream_slot(), self.scheduler.call(method, self._relative(url)):
            left = self._left(spend, first)
            if left is not None and left <= 0:
                op = budget.remaining()
                if op is not None and op <= 0:
                    raise BrokerBusy(f"{method} {self._path(url)}: the operation's deadline passed while it waited; "
                                     "nothing was sent", connection=self.connection, retry_after=1.0)
                spent = RequestTimeout(f"{method} {self._path(url)}: the connection's time for this operation is "
                                       "spent; nothing was sent", connection=self.connection)
                spent.sent = False
                raise spent
            hdrs = dict(self.headers)
            if self.auth_headers is not None:
                hdrs.update(self.auth_headers())
            if headers:
                hdrs.update(headers)
            total = self.config.timeout if left is None else min(self.config.timeout, left)
            timeout = aiohttp.ClientTimeout(total=total, connect=min(self.config.connect_timeout, total))
            # what happens on the network moves the connection's circuit and spends its time
            async with breaker.request():
                with spend.running() if spend is not None else contextlib.nullcontext():
                    self.calls += 1
                    if not first:
                        first.append(asyncio.get_running_loop().time())
                    try:
                        # never a redirect: aiohttp would resend the auth headers to wherever it points
                        async with self.session.request(method, url, params=params, json=json_body, headers=hdrs,
                                                        timeout=timeout, allow_redirects=False) as resp:
                            text = await resp.text()
                            response = HttpResponse(resp.status, resp.headers, self._decode(text, resp.status, url),
                                                    url)
                    except TimeoutError as exc:
                        raise RequestTimeout(f"{method} {self._path(url)} timed out after {total:g}s",
                                             connection=self.connection) from exc
                    except aiohttp.ClientConnectorError as exc:  # no connection: the request never left
                        refused = BrokerNotAvailable(f"{method} {self._path(url)} failed: {type(exc).__name__}",
                                                     connection=self.connection)
                        refused.sent = False
                        raise refused from exc
                    except aiohttp.ClientError as exc:
                        raise BrokerNotAvailable(f"{method} {self._path(url)} failed: {type(exc).__name__}",
                                                 connection=self.connection) from exc
                self._raise_for(method, url, response)
        return response

    def _raise_for(self, method: str, url: str, response: HttpResponse) -> None:
        """The broker's error for ``response`` (the adapter's ``map_error``), a 5xx or a 429; a
        redirect (3xx) is a ``BadResponse``: it is never followed."""
        if 300 <= response.status < 400:
            raise BadResponse(f"{method} {self._path(url)} answered a redirect (HTTP {response.status}); redirects "
                              "are not followed", connection=self.connection)
        error = self.map_error(response)
        if error is not None:
            error.with_connection(self.connection)
            if isinstance(error, RateLimitExceeded) and error.retry_after is None:
                error.retry_after = retry_after_seconds(response.headers)
            raise error
        if response.status >= 500:
            raise BrokerNotAvailable(f"{method} {self._path(url)} answered HTTP {response.status}",
                                     connection=self.connection)
        if response.status == 429:
            raise RateLimitExceeded(f"{method} {self._path(url)} rate limited", connection=self.connection,
                                    retry_after=retry_after_seconds(response.headers))

    def _decode(self, text: str, status: int, url: str) -> Any:
        if not text.strip() or 300 <= status < 400:  # a redirect's body is not read: _raise_for refuses it
            return None
        try:
            return wire_numbers.loads(text)  # numbers bounded: 1e1000000 would stall an adapter's conversion
        except ValueError:
            if status >= 500 or status == 429:
                return None  # an HTML error page from a proxy: the status tells what happened
            raise BadResponse(f"non-JSON answer from {self._path(url)} (HTTP {status})",
                              connection=self.connection) from None

    def _path(self, url: str) -> str:
        """The URL without scheme, host and query, for messages (never credentials)."""
        rest = url.split("://", 1)[-1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return path.split("?", 1)[0]


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base_url`` (default ports made explicit)."""
    a, b = urlsplit(url), urlsplit(base_url)
    ports = {"http": 80, "https": 443}
    try:
        return (a.scheme.lower(), (a.hostname or "").lower(), a.port or ports.get(a.scheme.lower())) == \
            (b.scheme.lower(), (b.hostname or "").lower(), b.port or ports.get(b.scheme.lower())) and not a.username
    except ValueError:  # an invalid port
        return False


async def gather_settled(*aws: Any) -> list[Any]:
    """``asyncio.gather`` that returns exceptions in place of results (one failure spoils nothing)."""
    return list(await asyncio.gather(*aws, return_exceptions=True))
