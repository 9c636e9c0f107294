"""``/readyz``: each connection's state from its adapter, separately from ``/healthz``; 503 when no
connection can serve or the app has not started."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.readiness import readiness
from gateway.registry import Registry
from gateway.sandbox.engine import EngineConfig
from gateway.sandbox.etna.seed import APP_KEY, MAIN_USER
from gateway.sandbox.venue import SandboxRunner
from tests.conftest import gateway_config, lemon_connections
from tests.harness import RunningGateway, free_port, running_gateway


@pytest.fixture(scope="module")
async def etna_url() -> AsyncIterator[str]:
    runner = SandboxRunner(["etna"], config=EngineConfig.fast())
    await runner.start()
    yield runner.base_urls["etna"]
    await runner.stop()


def _etna(url: str, password: str) -> dict[str, object]:
    return {"broker": "etna", "base_url": url, "timeout": 2.0, "connect_timeout": 1.0, "read_retries": 0,
            "credentials": {"app_key": APP_KEY, "username": MAIN_USER["username"], "password": password}}


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(url)


async def test_readyz_reports_every_connection_and_healthz_stays_separate(gateway: RunningGateway) -> None:
    response = await _get(gateway.url.replace("/graphql", "/readyz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["connections"] == {
        "lemon": {"broker": "lemon", "status": "up", "circuit": "closed", "ready": True},
        "lemon-large": {"broker": "lemon", "status": "up", "circuit": "closed", "ready": True},
    }
    health = (await _get(gateway.url.replace("/graphql", "/healthz"))).json()
    assert health["status"] == "ok" and "subscriptions" in health


async def test_refused_credentials_and_an_unreachable_broker_are_told_apart(lemon_url: str, etna_url: str) -> None:
    connections = {**lemon_connections(lemon_url),
                   "etna-wrong-password": _etna(etna_url, "not-the-password"),
                   "etna-unreachable": _etna(f"http://127.0.0.1:{free_port()}/api/", MAIN_USER["password"]),
                   "etna": _etna(etna_url, MAIN_USER["password"])}
    async with running_gateway(gateway_config(connections)) as gateway:
        response = await _get(gateway.url.replace("/graphql", "/readyz"))
    assert response.status_code == 200  # some connections serve
    states = {name: record["status"] for name, record in response.json()["connections"].items()}
    assert states == {"lemon": "up", "lemon-large": "up", "etna": "up",
                      "etna-wrong-password": "unauthenticated", "etna-unreachable": "down"}
    assert not response.json()["connections"]["etna-unreachable"]["ready"]


async def test_no_serving_connection_means_not_ready(etna_url: str) -> None:
    config = GatewayConfig.model_validate({"profile": "development", "connections": {"etna": _etna(etna_url, "wrong")}})
    async with running_gateway(config) as gateway:
        response = await _get(gateway.url.replace("/graphql", "/readyz"))
        health = await _get(gateway.url.replace("/graphql", "/healthz"))
    assert response.status_code == 503 and health.status_code == 200
    assert response.json()["reason"] == "no connection is serving"


def test_not_ready_before_start_and_while_stopping() -> None:
    registry = Registry(GatewayConfig())
    assert readiness(registry, started=False, stopping=False) == (
        False, {"status": "unavailable", "connections": {}, "reason": "starting"})
    assert readiness(registry, started=True, stopping=True)[0] is False
    assert readiness(registry, started=True, stopping=False) == (True, {"status": "ready", "connections": {}})
