"""Principals: who is calling and which connections they may use.

API keys are configured as SHA-256 digests (``[[api_keys]]``) mapped to connection names; the raw
key is hashed on arrival and compared in constant time. In the development profile a request
without a key is the ``anonymous`` principal with every connection.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .config import ApiKeyConfig, GatewayConfig

__all__ = ["Principal", "authenticate", "bearer_token"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: ``name`` (the API key's name) and the connections it may use."""

    name: str
    connections: frozenset[str]

    def can_use(self, connection: str) -> bool:
        return connection in self.connections


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(config: GatewayConfig, token: str | None) -> Principal | None:
    """The principal for ``token``; ``None`` when the key is unknown, or missing in production."""
    every = frozenset(config.connections)
    if token is None:
        return Principal("anonymous", every) if config.development else None
    digest = ApiKeyConfig.hash_key(token)
    for key in config.api_keys:
        if hmac.compare_digest(digest, key.sha256):
            allowed = every if "*" in key.connections else frozenset(key.connections) & every
            return Principal(key.name, allowed)
    return None
