"""The gateway in front of the ETNA venue (and lemon beside it), for the GraphQL-level ETNA tests.

Connections: ``etna`` (the main user, accounts 6303 and 6304, as ``broker-gateway serve`` has it),
``etna-large`` (account 6320: 150 positions, 300 orders) and ``lemon``. API keys narrow a client
to one connection: ``ETNA_KEY`` → ``etna``, ``LARGE_KEY`` → ``etna-large``; no key → all of them
(development profile).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.cli import sandbox_config
from gateway.config import ApiKeyConfig, GatewayConfig
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.etna.seed import APP_KEY, LARGE_USER
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, RunningGateway, SandboxControl, running_gateway

ETNA_KEY = "etna-test-key-main"
LARGE_KEY = "etna-test-key-large"


def gateway_config(runner: SandboxRunner, only: tuple[str, ...] | None = None) -> GatewayConfig:
    """``sandbox_config`` plus the ``etna-large`` connection and the two API keys."""
    base = sandbox_config(runner).model_dump()
    connections = base["connections"]
    large = {**connections["etna"], "credentials": {"app_key": APP_KEY, "username": LARGE_USER["username"],
                                                    "password": LARGE_USER["password"]}}
    connections["etna-large"] = large
    if only is not None:
        connections = {name: c for name, c in connections.items() if name in only}
    keys = [{"name": "etna", "sha256": ApiKeyConfig.hash_key(ETNA_KEY), "connections": ["etna"]},
            {"name": "large", "sha256": ApiKeyConfig.hash_key(LARGE_KEY), "connections": ["etna-large"]}]
    return GatewayConfig.model_validate({**base, "connections": connections,
                                         "api_keys": [k for k in keys if set(k["connections"]) <= set(connections)]})


@dataclass
class EtnaGateway:
    runner: SandboxRunner
    gateway: RunningGateway
    control: SandboxControl

    @property
    def all(self) -> GraphQLClient:
        return self.gateway.client()

    @property
    def etna(self) -> GraphQLClient:
        return self.gateway.client(ETNA_KEY)

    @property
    def large(self) -> GraphQLClient:
        return self.gateway.client(LARGE_KEY)


@contextlib.asynccontextmanager
async def etna_gateway(venues: tuple[str, ...] = ("etna", "lemon")) -> AsyncIterator[EtnaGateway]:
    runner = SandboxRunner(list(venues), config=EngineConfig.fast())
    await runner.start()
    try:
        async with running_gateway(gateway_config(runner)) as gw:
            yield EtnaGateway(runner, gw, SandboxControl(runner.base_urls["etna"]))
    finally:
        await runner.stop()

