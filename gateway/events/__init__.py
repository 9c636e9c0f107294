"""Order-status events: the bus (memory or Redis), the watchers, and the metrics about them."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import EventsConfig
from ..registry import Registry
from .bus import EventBus, MemoryBus, RedisBus
from .codec import OrderEvent
from .metrics import GatewayMetrics
from .watchers import MemoryState, RedisState, WatcherManager, WatcherSettings

__all__ = ["Events", "OrderEvent"]


@dataclass(slots=True)
class Events:
    """Everything the subscription and the mutations need, built from ``[events]``."""

    bus: EventBus
    watchers: WatcherManager
    metrics: GatewayMetrics

    @classmethod
    def build(cls, config: EventsConfig, registry: Registry, metrics: GatewayMetrics | None = None) -> Events:
        metrics = metrics or GatewayMetrics()
        settings = WatcherSettings(fast_interval=config.fast_interval, slow_interval=config.slow_interval,
                                   resync_interval=config.resync_interval, silence_timeout=config.silence_timeout,
                                   lease_ttl=config.lease_ttl, linger=config.linger)
        bus: EventBus
        state: MemoryState | RedisState
        if config.backend == "redis":
            assert config.redis_url
            bus = RedisBus(config.redis_url, key=config.stream_key, retention=config.retention)
            state = RedisState(config.redis_url, config.lease_ttl)
        else:
            bus = MemoryBus(retention=config.retention)
            state = MemoryState(live_ttl=3 * config.lease_ttl)
        return cls(bus, WatcherManager(registry, bus, state, settings, metrics), metrics)

    async def start(self) -> None:
        await self.bus.start()

    async def close(self) -> None:
        await self.watchers.close()
        await self.watchers.state.close()
        await self.bus.close()
