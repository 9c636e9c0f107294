"""The configured connections and their adapters, opened and closed with the app."""

from __future__ import annotations

import asyncio
import logging

from .brokers import build_adapter
from .brokers.base import BaseAdapter
from .brokers.ibkr.claim import LoginInUse
from .brokers.runtime import Runtime
from .config import GatewayConfig
from .domain.errors import OrderNotFound

__all__ = ["Registry"]

log = logging.getLogger(__name__)


class Registry:
    """Connection name → started adapter."""

    def __init__(self, config: GatewayConfig, runtime: Runtime | None = None) -> None:
        self.config = config
        self.runtime = runtime or Runtime()
        self.adapters: dict[str, BaseAdapter] = {name: build_adapter(c, self.runtime)
                                                 for name, c in config.connections.items()}

    def claim(self) -> None:
        """Claim every login that one process must serve alone (IBKR without Redis); raises
        ``LoginInUse`` naming the one another process holds."""
        for adapter in self.adapters.values():
            adapter.claim()

    async def start(self) -> None:
        """Start every adapter; a broker that is down only logs, a login another process serves
        (``LoginInUse``) refuses the start."""
        results = await asyncio.gather(*(a.start() for a in self.adapters.values()), return_exceptions=True)
        for name, result in zip(self.adapters, results, strict=True):
            if isinstance(result, LoginInUse):
                await self.close()
                raise result
            if isinstance(result, BaseException):
                log.warning("connection %s did not start: %s", name, result)

    async def close(self) -> None:
        await asyncio.gather(*(a.close() for a in self.adapters.values()), return_exceptions=True)

    def get(self, name: str) -> BaseAdapter:
        try:
            return self.adapters[name]
        except KeyError:
            raise OrderNotFound(f"no connection {name!r}") from None
