"""Circuit breaking per connection: a broker that keeps failing is left alone for a while.

A connection's requests count as failing when the broker cannot be reached, resets, times out or
answers 5xx (``RequestTimeout`` and ``BrokerNotAvailable``; not a 429, a refusal, an unreadable answer,
nor a call cancelled because its client went away). After ``threshold`` failures in a row the circuit
opens for ``reset`` seconds: every request of the connection then answers
:class:`~..domain.errors.CircuitOpen` at once (``BROKER_UNAVAILABLE`` with ``retryAfter``), without
waiting for pacing or touching the network, so a dead broker costs the other brokers' answers nothing.
Then one request at a time probes: a success closes the circuit, a failure opens it again. The state
machine is purgatory's (``AsyncCircuitBreakerFactory``); the one-probe rule and the early refusal are
this module's. ``/metrics`` (``gateway_circuit_state``) and ``/readyz`` show the state.

Connection settings: ``breaker_threshold`` (5), ``breaker_reset`` (30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from ..domain.errors import BadResponse, BrokerBusy, BrokerError, CircuitOpen, RateLimitExceeded
from .metrics import NULL, SessionMetrics

__all__ = ["ConnectionBreaker"]

_STATE_VALUES = {"closed": 0, "half-opened": 1, "opened": 2}


class ConnectionBreaker:
    """The circuit of one connection (see the module docstring)."""

    def __init__(self, connection: str, threshold: int = 5, reset: float = 30.0,
                 metrics: SessionMetrics = NULL) -> None:
        self.connection = connection
        self.threshold = threshold
        self.reset = reset
        self.metrics = metrics
        # what is not the broker failing: it answered (refused, rate-limited, unreadable), or nothing was sent
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold, default_ttl=reset,
            exclude=[BrokerError, RateLimitExceeded, BadResponse, BrokerBusy, asyncio.CancelledError])
        self._breaker: Any = None
        self._probing = False
        self.metrics.circuit_state.labels(connection).set(0)

    async def _get(self) -> Any:
        if self._breaker is None:
            self._breaker = await self._factory.get_breaker(self.connection)
        return self._breaker

    @property
    def state(self) -> str:
        """``closed``, ``half-open`` (a probe may go) or ``open``."""
        if self._breaker is None:
            return "closed"
        ctx = self._breaker.context
        if ctx.state == "opened":
            return "half-open" if time.time() > (ctx.opened_at or 0.0) + self.reset else "open"
        return "half-open" if ctx.state == "half-opened" else "closed"

    def _refuse(self) -> CircuitOpen:
        ctx = self._breaker.context if self._breaker is not None else None
        left = max((ctx.opened_at or 0.0) + self.reset - time.time(), 1.0) if ctx is not None else self.reset
        return CircuitOpen(f"{self.connection} is failing; its circuit is open for {left:.0f} s more "
                           "(nothing was sent)", connection=self.connection, retry_after=left)

    def check(self) -> None:
        """Refuse at once while the circuit is open, or while another request probes it."""
        state = self.state
        if state == "open" or (state == "half-open" and self._probing):
            raise self._refuse()

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Around one request on the network: its outcome moves the circuit."""
        breaker = await self._get()
        probe = self.state != "closed"
        if probe:
            if self._probing:
                raise self._refuse()
            self._probing = True
        try:
            async with breaker:
                yield
        except OpenedState:
            raise self._refuse() from None
        finally:
            if probe:
                self._probing = False
            self.metrics.circuit_state.labels(self.connection).set(_STATE_VALUES.get(breaker.context.state, 0))
