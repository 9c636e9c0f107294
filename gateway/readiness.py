"""``/readyz``: whether this replica should get traffic, and each connection's state.

``/healthz`` says the process answers; ``/readyz`` says whether it can serve: it answers 503 until the
app has started (adapters opened, logins tried) and once it is shutting down, and also when every
configured connection is down or unauthenticated (another replica may hold a working session). Each
connection's record comes from its adapter's ``status`` (``gateway.domain.enums.ConnectionStatus``):
``up`` (authenticated and answering), ``degraded`` (answering with limits, e.g. rate-limited),
``down`` (unreachable), ``unauthenticated`` (credentials refused or session expired).
"""

from __future__ import annotations

from typing import Any

from .domain.enums import ConnectionStatus
from .registry import Registry

__all__ = ["SERVING", "connection_states", "readiness"]

#: the states in which a connection still serves requests
SERVING = frozenset({ConnectionStatus.UP, ConnectionStatus.DEGRADED})


def connection_states(registry: Registry) -> dict[str, dict[str, Any]]:
    """Connection name → its record: ``{"broker": "lemon", "status": "up", "ready": true}``.

    ``circuit`` is the connection's circuit breaker (``closed``, ``half-open``, ``open``); a connection
    whose circuit is open is not ready (its requests are refused at once).
    """
    states: dict[str, dict[str, Any]] = {}
    for name, adapter in sorted(registry.adapters.items()):
        status: ConnectionStatus = adapter.status
        circuit = adapter.scheduler.breaker.state
        states[name] = {"broker": adapter.config.broker, "status": status.value, "circuit": circuit,
                        "ready": status in SERVING and circuit != "open"}
    return states


def readiness(registry: Registry, *, started: bool, stopping: bool) -> tuple[bool, dict[str, Any]]:
    """``(ready, body)`` for ``/readyz`` (see the module docstring)."""
    connections = connection_states(registry)
    serving = not connections or any(c["ready"] for c in connections.values())
    ready = started and not stopping and serving
    if not started:
        reason = "starting"
    elif stopping:
        reason = "stopping"
    elif not serving:
        reason = "no connection is serving"
    else:
        reason = None
    body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "connections": connections}
    if reason:
        body["reason"] = reason
    return ready, body
