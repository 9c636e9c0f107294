"""``broker-gateway`` command line: ``serve``, ``sandbox``, ``export-schema``, ``hash-key``."""

from __future__ import annotations

import asyncio
import logging
import sys

import click
import uvicorn

from .brokers.ibkr.claim import LoginInUse
from .config import ApiKeyConfig, GatewayConfig, load_config
from .sandbox.engine import EngineConfig
from .sandbox.venue import SandboxRunner, available_venues

__all__ = ["main", "sandbox_config"]


def sandbox_config(runner: SandboxRunner) -> GatewayConfig:
    """A development configuration with one connection per running sandbox venue."""
    connections = {}
    for name, url in runner.base_urls.items():
        venue = runner.venue(name)
        options = dict(venue.options)
        verify_tls = bool(options.pop("verify_tls", True))
        connections[name] = {"broker": name, "base_url": url, "credentials": dict(venue.credentials),
                             "options": options, "verify_tls": verify_tls, "timeout": 10.0}
    return GatewayConfig.model_validate({"profile": "development", "connections": connections})


def _default_venues() -> list[str]:
    """Venues that have both a sandbox package and an adapter package."""
    import importlib.util

    from .brokers import ADAPTERS

    return [name for name in available_venues()
            if importlib.util.find_spec(ADAPTERS[name].split(":")[0]) is not None]


#: ``serve`` without a configuration is a demo: the IBKR paper venue answers its slow endpoints (live
#: orders, portfolio accounts) once per 0.1 s and 100 requests a second in all (IBKR documents 5 s and
#: 10 a second), so that a Dashboard over the 21-account FA book loads in seconds rather than minutes.
#: ``broker-gateway sandbox`` runs the documented pacing; the connection's limiter follows whatever the
#: venue announces in its options.
DEMO_VENUE_OPTIONS = {"ibkr": {"pacing": {"slow_window": 0.1, "global_limit": 100}}}


async def _serve(config_path: str | None, host: str, port: int, venues: list[str] | None,
                 access_log: bool = False) -> None:
    from .app import create_app

    runner: SandboxRunner | None = None
    if config_path is None:
        runner = SandboxRunner(venues or _default_venues(), host="127.0.0.1", venue_options=DEMO_VENUE_OPTIONS)
        urls = await runner.start()
        for name, url in urls.items():
            click.echo(f"sandbox venue {name:<10} {url}")
        config = sandbox_config(runner)
    else:
        config = load_config(config_path)
    app = create_app(config)
    try:
        app.state.registry.claim()
    except LoginInUse as exc:
        click.echo(f"broker-gateway: {exc}", err=True)
        if runner is not None:
            await runner.stop()
        sys.exit(1)
    # no per-message deflate: a zlib context per WebSocket costs more memory than the small events save
    # uvicorn's access log is process-wide: on, it would also list every request to the sandbox venues
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="on",
                                           ws_per_message_deflate=False, access_log=access_log))
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.05)
    if server.started:
        bound = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}/graphql"
        if config.development:
            click.echo(f"GraphiQL: {url}")
        else:
            click.echo(f"GraphQL endpoint: {url} (production profile: API key required)")
    try:
        await task
    finally:
        if runner is not None:
            await runner.stop()


@click.group()
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def main(log_level: str) -> None:
    """broker-gateway: one GraphQL endpoint in front of several brokers."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="TOML configuration; without it the sandbox venues start in-process.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--venues", default=None, help="Comma-separated sandbox venues to start (default: all).")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every HTTP request.")
def serve(config_path: str | None, host: str, port: int, venues: str | None, access_log: bool) -> None:
    """Start the gateway (against the sandbox when no --config is given)."""
    asyncio.run(_serve(config_path, host, port, venues.split(",") if venues else None, access_log))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--fast", is_flag=True, help="Static prices and quick fills (as the tests use).")
def sandbox(host: str, fast: bool) -> None:
    """Start only the paper venues and print their base URLs."""

    async def run() -> None:
        runner = SandboxRunner(host=host, config=EngineConfig.fast() if fast else None)
        for name, url in (await runner.start()).items():
            venue = runner.venue(name)
            creds = ", ".join(f"{k}={v}" for k, v in venue.credentials.items())
            click.echo(f"{name:<10} {url}  ({creds})")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.stop()

    asyncio.run(run())


@main.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (what schema/schema.graphql holds)."""
    from .graphql.schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


@main.command("hash-key")
@click.argument("key")
def hash_key(key: str) -> None:
    """Print the SHA-256 of an API key, for ``[[api_keys]] sha256``."""
    click.echo(ApiKeyConfig.hash_key(key))


if __name__ == "__main__":  # pragma: no cover
    main()
