"""Prometheus metrics of one gateway app (its own registry, so several apps in one process stay apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    """Counts the gateway itself: live subscriptions, watchers, upstream polls, published events."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_subscriptions = Gauge("gateway_active_subscriptions", "Open orderStatusChanged subscriptions.",
                                          registry=self.registry)
        self.active_watchers = Gauge("gateway_active_watchers", "Running order watchers (one per watched account).",
                                     registry=self.registry)
        self.upstream_polls = Counter("gateway_upstream_polls", "REST snapshots of order lists taken by watchers.",
                                      ["connection"], registry=self.registry)
        self.watcher_restarts = Counter("gateway_watcher_restarts", "Watchers restarted after an unexpected "
                                        "exception (a lost Redis connection, a bug).", ["connection"],
                                        registry=self.registry)
        self.events_published = Counter("gateway_events_published", "Order-status events published to the bus.",
                                        registry=self.registry)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
