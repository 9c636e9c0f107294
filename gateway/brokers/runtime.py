"""What the app gives every adapter it builds: the metrics registry and, with the Redis backend, the
Redis client through which replicas share pacing, critical sections and confirmations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..config import ConnectionConfig
from .metrics import NULL, SessionMetrics

__all__ = ["Runtime", "session_name"]


@dataclass(slots=True)
class Runtime:
    """``redis``: a ``redis.asyncio.Redis`` shared by the app, or ``None`` (one replica)."""

    metrics: SessionMetrics = NULL
    redis: Any = None


def session_name(config: ConnectionConfig) -> str:
    """The broker session a connection logs into, the same on every replica: the option ``session``,
    else a digest of broker, base URL and credentials (never the credentials themselves)."""
    explicit = config.options.get("session")
    if explicit:
        return f"{config.broker}:{explicit}"
    parts = [config.broker, config.base_url]
    parts += [f"{k}={config.credential(k) or ''}" for k in sorted({*config.credentials, *config.credentials_env})]
    return f"{config.broker}:{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:16]}"
