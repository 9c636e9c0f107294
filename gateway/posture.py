"""The configuration's security posture: what ``check-config`` and ``serve`` warn about, and where the
development profile may listen.

* :func:`posture_warnings` — anonymous access (the development profile), API keys that may use every
  connection (``"*"``), broker connections over plain HTTP to a non-loopback host, TLS verification
  turned off.
* :func:`is_loopback` — whether a listen address is loopback (the only kind the development profile
  binds unless ``allow_remote_bind`` / ``serve --allow-remote`` says otherwise).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .config import GatewayConfig

__all__ = ["is_loopback", "posture_warnings"]


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost``, ``127.0.0.0/8`` and ``::1``; ``False`` for a wildcard
    (``0.0.0.0``, ``::``), any other address or a name that is not ``localhost``."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def posture_warnings(config: GatewayConfig) -> list[str]:
    """One line per risky setting, most serious first; empty for a locked-down production file.
    Never includes a secret (names of keys and connections only)."""
    out: list[str] = []
    if config.development:
        out.append('profile = "development": requests without an API key are served as "anonymous" with every '
                   "connection, introspection and GraphiQL are on; never use it for real accounts")
        return out
    if not config.api_keys:
        out.append("no [[api_keys]]: every request to /graphql is refused (401)")
    for key in config.api_keys:
        if "*" in key.connections:
            out.append(f'api key {key.name!r} may use every connection ("*"); list its connections instead')
    for name, conn in sorted(config.connections.items()):
        parts = urlsplit(conn.base_url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            out.append(f"connection {name!r} talks to its broker over plain HTTP ({parts.hostname}): "
                       "credentials and orders travel unencrypted")
        if not conn.verify_tls:
            out.append(f"connection {name!r} does not verify the broker's TLS certificate (verify_tls = false)")
    return out
