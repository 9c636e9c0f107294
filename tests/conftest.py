"""Session fixtures: the lemon paper venue and a gateway in front of it, both over real HTTP on
loopback. Tests that disturb a venue (stop it, inject faults) start their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ApiKeyConfig, GatewayConfig
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.lemon import API_KEY, LARGE_API_KEY
from gateway.sandbox.lemon.app import LemonSettings
from gateway.sandbox.venue import SandboxRunner
from tests.harness import GraphQLClient, RunningGateway, SandboxControl, free_port, start_redis


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The IBKR login claims' lock files (``gateway/brokers/ibkr/claim.py``) of this run go to a
    directory of its own (inherited by served processes), not one per venue port into /tmp."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))
        yield


MAIN_KEY = "test-key-main"
LARGE_KEY = "test-key-large"


def lemon_connections(base_url: str, **overrides: Any) -> dict[str, Any]:
    common = {"broker": "lemon", "base_url": base_url, "timeout": 2.0, "connect_timeout": 1.0, "read_retries": 1,
              "retry_max_wait": 0.2, "rate_limit": 10_000, **overrides}  # the test venue allows it (TEST_VENUE)
    return {
        "lemon": {**common, "credentials": {"api_key": API_KEY}},
        "lemon-large": {**common, "credentials": {"api_key": LARGE_API_KEY}},
    }


#: the tests send far more than lemon's 300 requests a minute: the test venue allows them
TEST_VENUE = {"lemon": {"settings": LemonSettings(rate_limit=100_000)}}

FAST_EVENTS = {"fast_interval": 0.2, "slow_interval": 0.5, "linger": 0.2, "lease_ttl": 2.0}


def gateway_config(connections: dict[str, Any], profile: str = "development",
                   events: dict[str, Any] | None = None) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "profile": profile,
        "connections": connections,
        "events": events or {},
        "api_keys": [
            {"name": "main", "sha256": ApiKeyConfig.hash_key(MAIN_KEY), "connections": ["lemon"]},
            {"name": "large", "sha256": ApiKeyConfig.hash_key(LARGE_KEY), "connections": ["lemon-large"]},
        ],
    })


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[SandboxRunner]:
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
    await runner.start()
    yield runner
    await runner.stop()


@pytest.fixture
async def own_lemon_venue() -> AsyncIterator[SandboxRunner]:
    """A lemon venue of the test's own, which it may stop, disturb or fill."""
    runner = SandboxRunner(["lemon"], config=EngineConfig.fast(), venue_options=TEST_VENUE)
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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (``make test`` installs it where it is missing)."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def lemon_config_file(path: Path, lemon_url: str, *, head: str = "", keys: str | None = '["lemon"]',
                      more: str = "") -> Path:
    """A configuration file at ``path``: one lemon connection to ``lemon_url`` (``more`` TOML after it)
    and the API key ``MAIN_KEY`` for ``keys`` (``None``: no API keys, so a development gateway asks
    for none); no ``profile`` unless ``head`` says one (production)."""
    api_keys = "" if keys is None else f"""
[[api_keys]]
name = "main"
sha256 = "{ApiKeyConfig.hash_key(MAIN_KEY)}"
connections = {keys}
"""
    path.write_text(f"""{head}
[connections.lemon]
broker = "lemon"
base_url = "{lemon_url}"
credentials = {{ api_key = "{API_KEY}" }}
rate_limit = 10000
{more}{api_keys}""")
    return path
