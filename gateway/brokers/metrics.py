"""Prometheus metrics of the broker sessions: how each connection's scheduler, critical section and
snapshots behave (``/metrics``, label ``connection``). One instance per app registry, so several apps
in one process (the tests) stay apart; :data:`NULL` for adapters built without an app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["NULL", "SessionMetrics"]

_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class SessionMetrics:
    """Per connection: scheduler queue length and waits, refusals for lack of time, critical-section
    waits and hold times, snapshot hits and misses, single-flight joins."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.queue_length = Gauge("gateway_session_queue_length", "Calls waiting for the session (pacing, priority).",
                                  ["connection"], registry=r)
        self.queue_wait = Histogram("gateway_session_queue_wait_seconds", "Time a call waited for its pacing permit.",
                                    ["connection", "priority"], buckets=_WAIT_BUCKETS, registry=r)
        self.busy = Counter("gateway_session_busy", "Calls refused because the deadline came before the session "
                            "could serve them (nothing was sent).", ["connection"], registry=r)
        self.lock_wait = Histogram("gateway_session_lock_wait_seconds", "Time spent waiting for the critical section.",
                                   ["connection", "priority"], buckets=_WAIT_BUCKETS, registry=r)
        self.lock_hold = Histogram("gateway_session_lock_hold_seconds", "Time the critical section was held.",
                                   ["connection"], buckets=_WAIT_BUCKETS, registry=r)
        self.snapshot_hits = Counter("gateway_snapshot_hits", "Reads served from a snapshot younger than maxAge.",
                                     ["connection", "resource"], registry=r)
        self.snapshot_misses = Counter("gateway_snapshot_misses", "Reads that went to the broker.",
                                       ["connection", "resource"], registry=r)
        self.singleflight_joins = Counter("gateway_singleflight_joins", "Reads that joined an identical read "
                                          "already on its way.", ["connection", "resource"], registry=r)
        self.circuit_state = Gauge("gateway_circuit_state", "The connection's circuit: 0 closed, 1 half-open "
                                   "(a probe may go), 2 open (requests refused at once).", ["connection"], registry=r)
        self.upstream_requests = Counter("gateway_upstream_requests", "HTTP requests sent to the broker.",
                                         ["connection"], registry=r)


NULL = SessionMetrics()
