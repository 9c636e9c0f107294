"""Fail closed: a configuration file is production unless it says otherwise; the development profile
listens on loopback only; ``check-config`` and ``serve`` name the risky settings of a production file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import pytest

from gateway.cli import _check_bind
from gateway.config import ApiKeyConfig, GatewayConfig, load_config
from gateway.posture import is_loopback, posture_warnings
from gateway.sandbox.lemon import API_KEY
from tests.conftest import MAIN_KEY, lemon_config_file
from tests.harness import document, running_gateway, served_process


def _file(tmp_path: Path, lemon_url: str, head: str = "", keys: str = '["lemon"]') -> Path:
    return lemon_config_file(tmp_path / "gateway.toml", lemon_url, head=head, keys=keys)


async def test_a_configuration_file_without_profile_is_production(tmp_path: Path, lemon_url: str) -> None:
    config = load_config(_file(tmp_path, lemon_url))
    assert config.profile == "production"
    async with running_gateway(config) as gateway:
        anonymous = await gateway.client().post(document("Dashboard"))
        assert anonymous.status_code == 401
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        introspection = (await gateway.client(MAIN_KEY).post("{ __schema { types { name } } }")).json()
        assert introspection.get("errors") and not introspection.get("data")
        served = await gateway.client(MAIN_KEY).data("Dashboard")
    assert [c["name"] for c in served["connections"]] == ["lemon"]


def test_only_a_file_that_asks_for_it_is_development(tmp_path: Path) -> None:
    path = tmp_path / "dev.toml"
    path.write_text('profile = "development"\n')
    assert load_config(path).development
    assert not GatewayConfig().development  # the model's own default is production too


def test_the_development_profile_binds_loopback_only_unless_told() -> None:
    development = GatewayConfig(profile="development")
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        _check_bind(development, host, allow_remote=False)
        _check_bind(None, host, allow_remote=False)  # the sandbox demo
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        with pytest.raises(click.ClickException, match="loopback only"):
            _check_bind(development, host, allow_remote=False)
        with pytest.raises(click.ClickException, match="loopback only"):
            _check_bind(None, host, allow_remote=False)
        _check_bind(development, host, allow_remote=True)
        _check_bind(GatewayConfig(profile="development", allow_remote_bind=True), host, allow_remote=False)
        _check_bind(GatewayConfig(profile="production"), host, allow_remote=False)
    assert is_loopback("[::1]") and not is_loopback("0.0.0.0")


async def test_serve_refuses_a_development_profile_on_every_interface(tmp_path: Path, lemon_url: str) -> None:
    path = _file(tmp_path, lemon_url, head='profile = "development"')
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "serve", "--config", str(path),
                                                "--host", "0.0.0.0", "--port", "1",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0 and "loopback only" in out.decode() and "--allow-remote" in out.decode()


def test_posture_warnings_name_anonymous_access_star_keys_and_plain_http(tmp_path: Path) -> None:
    path = tmp_path / "risky.toml"
    path.write_text(f"""
[connections.lemon]
broker = "lemon"
base_url = "http://paper-trading.lemon.markets/v1/"
credentials = {{ api_key = "secret-lemon-token" }}

[connections.local]
broker = "lemon"
base_url = "http://127.0.0.1:9000/v1/"

[connections.etna]
broker = "etna"
base_url = "https://etna.example/api/"
verify_tls = false

[[api_keys]]
name = "admin"
sha256 = "{ApiKeyConfig.hash_key("k")}"
connections = ["*"]
""")
    warnings = posture_warnings(load_config(path))
    text = "\n".join(warnings)
    assert len(warnings) == 3, text
    assert "'admin' may use every connection" in text
    assert "'lemon' talks to its broker over plain HTTP" in text and "'local'" not in text
    assert "'etna' does not verify" in text
    assert "secret-lemon-token" not in text
    assert "anonymous" in "\n".join(posture_warnings(GatewayConfig(profile="development")))
    assert posture_warnings(GatewayConfig(profile="production")) == ["no [[api_keys]]: every request to /graphql "
                                                                     "is refused (401)"]


async def test_check_config_prints_the_warnings(tmp_path: Path, lemon_url: str) -> None:
    path = _file(tmp_path, "http://broker.example/v1/", keys='["*"]')
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "check-config", str(path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 0, out
    assert "profile: production" in out
    assert "warning: api key 'main' may use every connection" in out
    assert "warning: connection 'lemon' talks to its broker over plain HTTP" in out
    assert API_KEY not in out


async def test_serve_logs_the_warnings_at_start(tmp_path: Path, lemon_url: str) -> None:
    async with served_process("--config", str(_file(tmp_path, lemon_url, keys='["*"]'))) as (_, lines):
        pass
    assert any("configuration: api key 'main' may use every connection" in line for line in lines), lines
