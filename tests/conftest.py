"""Session fixtures: the lemon paper venue and a gateway in front of it, both over real HTTP on
loopback. Tests that disturb a venue (stop it, inject faults) start their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.config import ApiKeyConfig, GatewayConfig
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.lemon import API_KEY, LARGE_API_KEY
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, RunningGateway, SandboxControl

MAIN_KEY = "test-key-main"
LARGE_KEY = "test-key-large"


def lemon_connections(base_url: str, **overrides: Any) -> dict[str, Any]:
    common = {"broker": "lemon", "base_url": base_url, "timeout": 2.0, "connect_timeout": 1.0, "read_retries": 1,
              "retry_max_wait": 0.2, **overrides}
    return {
        "lemon": {**common, "credentials": {"api_key": API_KEY}},
        "lemon-large": {**common, "credentials": {"api_key": LARGE_API_KEY}},
    }


def gateway_config(connections: dict[str, Any], profile: str = "development") -> GatewayConfig:
    return GatewayConfig.model_validate({
        "profile": profile,
        "connections": connections,
        "api_keys": [
            {"name": "main", "sha256": ApiKeyConfig.hash_key(MAIN_KEY), "connections": ["lemon"]},
            {"name": "large", "sha256": ApiKeyConfig.hash_key(LARGE_KEY), "connections": ["lemon-large"]},
        ],
    })


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast())
    await runner.start()
    yield runner
    await runner.stop()


@pytest.fixture(scope="session")
def lemon_url(sandbox: SandboxRunner) -> str:
    return sandbox.base_urls["lemon"]


@pytest.fixture(scope="session")
def lemon_control(lemon_url: str) -> SandboxControl:
    return SandboxControl(lemon_url)


@pytest.fixture(scope="session")
async def gateway(lemon_url: str) -> AsyncIterator[RunningGateway]:
    running = await RunningGateway(gateway_config(lemon_connections(lemon_url))).start()
    yield running
    await running.stop()


@pytest.fixture(scope="session")
def gql(gateway: RunningGateway) -> GraphQLClient:
    """A client whose key may use the main lemon connection only."""
    return gateway.client(MAIN_KEY)
