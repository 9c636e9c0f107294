"""The command line as a user runs it: `serve` with no configuration, `serve --config`, `hash-key`."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import ApiKeyConfig, load_config
from gateway.sandbox.lemon import API_KEY
from tests.harness import GraphQLClient, running_gateway, served_process


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, list[str]]]:
    async with served_process() as item:
        yield item


async def test_serve_without_config_runs_the_dashboard_against_every_sandbox_venue(
        served: tuple[str, list[str]]) -> None:
    url, lines = served
    assert any(re.search(r"sandbox venue lemon\s+http://127\.0\.0\.1:\d+/v1/", line) for line in lines), lines
    assert any(f"GraphiQL: {url}" in line for line in lines)
    data = await GraphQLClient(url).data("Dashboard")
    connections = {c["name"]: c for c in data["connections"]}
    assert set(connections) == {"lemon", "ibkr", "etna", "aliceblue"}
    ibkr = connections["ibkr"]
    assert len(ibkr["accounts"]) >= 21 and ibkr["allocationGroups"]
    assert {a["kind"] for a in ibkr["accounts"]} == {"ADVISOR_MASTER", "ADVISOR_CLIENT"}
    assert sum(a["orders"]["totalCount"] for a in ibkr["accounts"]) > 0
    for connection in connections.values():
        assert connection["status"] == "UP" and connection["accounts"], connection["name"]
    lemon = connections["lemon"]["accounts"][0]
    assert lemon["positions"]["totalCount"] >= 4 and lemon["positions"]["nodes"][0]["averagePrice"]["currency"] == "EUR"


async def test_toml_configuration_with_secrets_from_the_environment(tmp_path: Path, lemon_url: str) -> None:
    key = "frontend-key-123"
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(f"""
profile = "production"

[connections.paper]
broker = "lemon"
base_url = "{lemon_url}"
credentials_env = {{ api_key = "TEST_LEMON_API_KEY" }}
timeout = 3.0

[[api_keys]]
name = "frontend"
sha256 = "{ApiKeyConfig.hash_key(key)}"
connections = ["paper"]
""")
    os.environ["TEST_LEMON_API_KEY"] = API_KEY
    try:
        config = load_config(config_file)
        assert "sandbox-lemon-key" not in repr(config)  # secrets stay out of reprs and logs
        async with running_gateway(config) as gateway:
            data = await gateway.client(key).data("Dashboard")
    finally:
        del os.environ["TEST_LEMON_API_KEY"]
    assert data["connections"][0]["name"] == "paper" and data["connections"][0]["accounts"]


async def test_hash_key_prints_the_sha256() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "hash-key", "abc",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.decode().strip() == ApiKeyConfig.hash_key("abc")


def test_the_example_configuration_loads() -> None:
    config = load_config(Path(__file__).resolve().parent.parent / "gateway.example.toml")
    assert {c.broker for c in config.connections.values()} == {"lemon", "ibkr", "etna", "aliceblue"}
    assert config.profile == "production" and config.events.backend == "redis"
    from gateway.brokers import build_adapter

    for connection in config.connections.values():
        assert build_adapter(connection).connection == connection.name
