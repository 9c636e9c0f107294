"""The command line as a user runs it: `serve` with no configuration, `serve --config`, `hash-key`."""

from __future__ import annotations

import asyncio
import json
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
    # SHA-256("abc"), the FIPS 180-2 test vector
    assert out.decode().strip() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_the_example_configuration_loads() -> None:
    config = load_config(Path(__file__).resolve().parent.parent / "gateway.example.toml")
    assert {c.broker for c in config.connections.values()} == {"lemon", "ibkr", "etna", "aliceblue"}
    assert config.profile == "production" and config.events.backend == "redis"
    from gateway.brokers import build_adapter

    for connection in config.connections.values():
        assert build_adapter(connection).connection == connection.name


# -- the command line as a new user meets it ---------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


async def _cli(*args: str, timeout: float = 60) -> tuple[int, str]:
    """``python -m gateway.cli ARGS``: exit status and output (stdout and stderr together)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_version() -> None:
    from importlib.metadata import version

    status, out = await _cli("--version")
    assert status == 0 and out.strip() == f"broker-gateway, version {version('broker-gateway')}"


def test_help_texts_have_no_markup() -> None:
    from click.testing import CliRunner

    from gateway.cli import main

    runner = CliRunner()
    pages = {"": runner.invoke(main, ["--help"])}
    pages.update({name: runner.invoke(main, [name, "--help"]) for name in main.commands})
    assert {"serve", "sandbox", "check-config", "persisted-manifest", "export-schema", "hash-key"} <= set(pages)
    for name, result in pages.items():
        assert result.exit_code == 0, (name, result.output)
        for markup in ("``", ":class:", ":func:", ":data:", "**", ".. "):
            assert markup not in result.output, (name, markup, result.output)


async def test_serve_on_a_busy_port_prints_one_line_and_fails() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, out = await _cli("serve", "--port", str(port), "--venues", "lemon")
    lines = [line for line in out.splitlines() if line.strip()]
    assert status != 0
    assert len(lines) == 1, out
    assert str(port) in lines[0] and "already in use" in lines[0]


async def test_check_config_accepts_the_example_and_summarises_it() -> None:
    status, out = await _cli("check-config", str(ROOT / "gateway.example.toml"))
    assert status == 0, out
    assert "gateway.example.toml: OK" in out and "profile: production" in out
    assert "lemon-paper (lemon)" in out and "API keys: 2" in out


async def test_check_config_names_each_offending_key_and_never_a_value(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("""
profile = "production"
persisted_operations = "sometimes"

[connections.paper]
broker = "lemon"
base_url = "https://paper-trading.lemon.markets/v1/"
timeout = -1
tiemout = 3
credentials = { api_key = ["top-secret-value"] }

[limits]
max_depht = 3
""")
    status, out = await _cli("check-config", str(broken))
    assert status == 1, out
    for key in ("persisted_operations:", "connections.paper.timeout:", "connections.paper.tiemout: unknown key",
                "connections.paper.credentials.api_key:", "limits.max_depht: unknown key"):
        assert key in out, (key, out)
    assert "top-secret-value" not in out and "Traceback" not in out

    syntax = tmp_path / "syntax.toml"
    syntax.write_text('profile = "production"\n[connections.paper\nbroker = "lemon"\n')
    status, out = await _cli("check-config", str(syntax))
    assert status == 1 and "not valid TOML" in out and "line 2" in out, out

    manifest = tmp_path / "manifest.toml"
    manifest.write_text('persisted_operations = "require"\npersisted_manifest = "missing.json"\n')
    status, out = await _cli("check-config", str(manifest))
    assert status == 1 and "persisted_manifest: cannot read" in out, out


async def test_ctrl_c_under_make_run_with_subscribers_connected_stops_cleanly() -> None:
    """Ctrl-C in a terminal sends SIGINT to the foreground process group: make and the gateway."""
    import signal

    import httpx
    import websockets

    from tests.harness import free_port

    port = free_port()
    # -o: never reinstall here (make test has installed the package)
    proc = await asyncio.create_subprocess_exec(
        "make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed-run", "run", f"PORT={port}",
        "LOG_LEVEL=info", "VENUES=lemon", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("GraphiQL:" in line for line in lines):
                line = (await proc.stdout.readline()).decode()
                assert line, "make run exited early:\n" + "".join(lines)
                lines.append(line)
        url = f"127.0.0.1:{port}/graphql"
        subscription = "subscription { orderStatusChanged { eventId status } }"
        async with websockets.connect(f"ws://{url}", subprotocols=["graphql-transport-ws"]) as ws, \
                httpx.AsyncClient(timeout=30) as http, \
                http.stream("POST", f"http://{url}/stream", json={"query": subscription},
                            headers={"Accept": "text/event-stream"}) as sse:
            await ws.send('{"type": "connection_init"}')
            assert "connection_ack" in await asyncio.wait_for(ws.recv(), 10)
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": subscription}}))
            assert sse.status_code == 200
            await asyncio.sleep(0.5)
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
            async for _ in sse.aiter_lines():  # the stream ends as an HTTP response should
                pass
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 15)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # "service restart"
        async with asyncio.timeout(30):
            rest = (await proc.stdout.read()).decode()
            await proc.wait()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    output = "".join(lines) + rest
    assert "ASGI callable returned without completing response" not in output, output
    assert "Traceback" not in output and "Aborted" not in output and "ERROR" not in output, output
    assert output.count("Shutting down") == 1 and output.count("Finished server process") == 1, output
