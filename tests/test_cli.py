"""The command line as a user runs it: `serve` with no configuration, `serve --config`, `hash-key`."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import ApiKeyConfig, load_config
from gateway.sandbox.lemon import API_KEY
from tests.harness import GraphQLClient, running_gateway


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[tuple[str, list[str]]]:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})})
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "serve exited early:\n" + "".join(lines)
                lines.append(line)
                if "GraphiQL:" in line or "GraphQL endpoint:" in line:
                    break
        drain = asyncio.create_task(_drain(proc.stdout))  # keep the pipe from filling up
        yield f"http://127.0.0.1:{port}/graphql", lines
    finally:
        proc.terminate()
        await proc.wait()
        if drain is not None:
            await drain


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, list[str]]]:
    async for item in _serve("--venues", "lemon"):
        yield item


async def test_serve_without_config_runs_the_dashboard_against_the_sandbox(
        served: tuple[str, list[str]]) -> None:
    url, lines = served
    assert any(re.search(r"sandbox venue lemon\s+http://127\.0\.0\.1:\d+/v1/", line) for line in lines), lines
    assert any(f"GraphiQL: {url}" in line for line in lines)
    data = await GraphQLClient(url).data("Dashboard")
    connections = {c["name"]: c for c in data["connections"]}
    assert "lemon" in connections
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
