"""``broker-gateway`` command line: ``serve``, ``sandbox``, ``check-config``, ``persisted-manifest``,
``export-schema``, ``hash-key``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pydantic
import uvicorn

from .brokers.ibkr.claim import LoginInUse
from .config import ApiKeyConfig, GatewayConfig, load_config
from .logs import adopt_uvicorn_loggers, configure_logging
from .posture import is_loopback, posture_warnings
from .sandbox.engine import EngineConfig
from .sandbox.venue import SandboxRunner, available_venues

__all__ = ["config_errors", "main", "sandbox_config"]

log = logging.getLogger(__name__)


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

#: seconds ``serve`` waits, after Ctrl-C or SIGTERM, for open requests and streams before cancelling them
#: (the default of ``[transport] shutdown_timeout``)
GRACEFUL_SHUTDOWN = 10.0


# -- configuration errors -------------------------------------------------------------------------

def _key(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the TOML key a user wrote: ``connections.lemon.timeout``, ``api_keys[0].sha256``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MESSAGES = {"extra_forbidden": "unknown key", "missing": "required key is missing"}


def config_errors(path: str | Path) -> tuple[GatewayConfig | None, list[str]]:
    """Load ``path``; ``(config, [])`` when valid, else ``(None, ["key: problem", ...])``. Never
    echoes a value (it may be a secret)."""
    try:
        config = load_config(path)
    except OSError as exc:
        return None, [f"cannot read the file: {exc.strerror or exc}"]
    except tomllib.TOMLDecodeError as exc:
        return None, [f"not valid TOML: {exc}"]
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            key = _key(tuple(error["loc"])) or "(top level)"
            message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
            problems.append(f"{key}: {message}")
        return None, problems
    if config.persisted_manifest is not None:
        from .persisted import load_manifest

        try:
            load_manifest(config.persisted_manifest)
        except OSError as exc:
            return None, [f"persisted_manifest: cannot read {config.persisted_manifest}: {exc.strerror or exc}"]
        except ValueError as exc:
            return None, [f"persisted_manifest: {exc}"]
    return config, []


def _load_or_fail(path: str) -> GatewayConfig:
    config, problems = config_errors(path)
    if config is None:
        raise click.ClickException(f"{path}: " + "; ".join(problems))
    return config


def _summary(config: GatewayConfig) -> list[str]:
    connections = ", ".join(f"{name} ({c.broker})" for name, c in sorted(config.connections.items())) or "none"
    from .telemetry import otlp_traces_endpoint

    endpoint = otlp_traces_endpoint(config.telemetry)
    tracing = f"on ({endpoint})" if endpoint else "off (no otlp_endpoint)"
    return [
        f"profile: {config.profile}",
        f"connections: {connections}",
        f"API keys: {len(config.api_keys)}",
        f"events backend: {config.events.backend}",
        f"persisted operations: {config.persisted_operations}"
        + (f" (manifest {config.persisted_manifest})" if config.persisted_manifest else ""),
        f"GraphiQL: {'on' if config.graphiql_enabled else 'off'}",
        f"tracing: {tracing}",
    ]


# -- serve ------------------------------------------------------------------------------------------

def _listen(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) socket for ``host:port``; a one-line ``ClickException`` when the
    address is taken or not available."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(f"port {port} on {host} is already in use; stop what listens there "
                                       f"or choose another with --port") from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server; ``_serve`` handles the signals (uvicorn's own handling re-raises the signal
    after shutting down, which ends the process with a traceback-like "Aborted!")."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def _stop_on_signals(server: _Server) -> Iterator[None]:
    """Ctrl-C or SIGTERM: a graceful shutdown (a second Ctrl-C: do not wait for open connections)."""
    originals = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in originals.items():
            signal.signal(sig, handler)


def _event_loop() -> asyncio.AbstractEventLoop:
    """The loop ``serve`` runs on: uvloop's (``uvicorn[standard]`` installs it, and the ``--workers``
    processes run on it as uvicorn chooses), else asyncio's. uvloop spends less CPU per request
    (bench/README.md, ``queries.py``)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency of uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _check_bind(config: GatewayConfig | None, host: str, allow_remote: bool) -> None:
    """The development profile (and the sandbox demo, ``config`` ``None``) listens on loopback only,
    unless ``--allow-remote`` or ``allow_remote_bind = true``: a ``ClickException`` otherwise."""
    development = config is None or config.development
    allowed = allow_remote or (config is not None and config.allow_remote_bind)
    if development and not allowed and not is_loopback(host):
        raise click.ClickException(
            f"the development profile serves requests without an API key; it listens on loopback only, not on "
            f"{host}. Use a production configuration, or pass --allow-remote (allow_remote_bind = true) "
            "if you mean it")


async def _serve(config_path: str | None, host: str, port: int, venues: list[str] | None,
                 access_log: bool = False, allow_remote: bool = False) -> None:
    from .app import create_app

    config = _load_or_fail(config_path) if config_path is not None else None
    _check_bind(config, host, allow_remote)
    sock = _listen(host, port)  # before any venue starts: a busy port is one line
    runner: SandboxRunner | None = None
    try:
        if config is None:
            runner = SandboxRunner(venues or _default_venues(), host="127.0.0.1", venue_options=DEMO_VENUE_OPTIONS)
            urls = await runner.start()
            for name, url in urls.items():
                click.echo(f"sandbox venue {name:<10} {url}")
            config = sandbox_config(runner)
        try:
            app = create_app(config, settle_heap=True)
        except (OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        try:
            app.state.registry.claim()  # one process per IBKR login without Redis: refused in one line
        except LoginInUse as exc:
            raise click.ClickException(str(exc)) from None
        if config_path is not None:  # once the start cannot be refused any more: a refusal stays one line
            for warning in posture_warnings(config):
                log.warning("configuration: %s", warning)
        # no per-message deflate: a zlib context per WebSocket costs more memory than the small events save.
        # uvicorn's access log is process-wide: on, it would also list every request to the sandbox venues.
        # log_config=None: the CLI's logging (level, text or JSON) applies to uvicorn's lines too.
        server = _Server(uvicorn.Config(app, lifespan="on", ws_per_message_deflate=False, access_log=access_log,
                                        log_config=None, timeout_graceful_shutdown=config.transport.shutdown_timeout,
                                        ws_max_size=config.limits.max_ws_frame_bytes))
        adopt_uvicorn_loggers(access_log=access_log)  # the venues' uvicorn configs installed their own
        with _stop_on_signals(server):
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes only a flag
                await asyncio.sleep(0.05)
            if server.started:
                log.info("serving on %s's event loop", type(asyncio.get_running_loop()).__module__.split(".")[0])
                bound = server.servers[0].sockets[0].getsockname()[1]
                url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}/graphql"
                if config.graphiql_enabled:
                    click.echo(f"GraphiQL: {url}")
                else:
                    click.echo(f"GraphQL endpoint: {url}" + ("" if config.development else " (API key required)"))
            await task
            if runner is not None:
                # the venues' own uvicorn servers would repeat the gateway's shutdown lines
                logging.getLogger("uvicorn.error").setLevel(max(logging.getLogger().level, logging.WARNING))
                await runner.stop()
                runner = None
    finally:
        sock.close()
        if runner is not None:
            await runner.stop()


# -- commands ---------------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="broker-gateway", prog_name="broker-gateway")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Lowest level of log line shown.")
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="Log lines as text or as JSON objects (one a line, with the request id).")
def main(log_level: str, log_format: str) -> None:
    """broker-gateway: one GraphQL endpoint in front of several brokers."""
    configure_logging(log_level, log_format)  # type: ignore[arg-type]


@main.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="TOML configuration; without it the sandbox venues start in-process.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--venues", default=None, help="Comma-separated sandbox venues to start (default: all).")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every HTTP request.")
@click.option("--allow-remote", is_flag=True,
              help="Let the development profile (no API key needed) listen on a non-loopback address.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes sharing the port (needs --config with [events] backend = \"redis\").")
def serve(config_path: str | None, host: str, port: int, venues: str | None, access_log: bool,
          allow_remote: bool, workers: int) -> None:
    """Start the gateway (against the sandbox when no --config is given).

    Ctrl-C (or SIGTERM) stops it gracefully: open subscriptions are closed, in-flight requests finish;
    a second Ctrl-C stops without waiting. With --workers N, N processes serve the same port on the
    Redis event bus: a subscriber on any worker receives every event, and each watched account has one
    watcher across all of them (a Redis lease per account).
    """
    if workers > 1:
        _serve_workers(config_path, host, port, workers, access_log, allow_remote)
        return
    with asyncio.Runner(loop_factory=_event_loop) as loop_runner:
        loop_runner.run(_serve(config_path, host, port, venues.split(",") if venues else None, access_log,
                               allow_remote))


_CONFIG_ENV = "BROKER_GATEWAY_WORKER_CONFIG"


def worker_app() -> Any:
    """The app of one ``--workers`` process (a uvicorn factory: the configuration path comes in
    ``BROKER_GATEWAY_WORKER_CONFIG``)."""
    from .app import create_app

    config = _load_or_fail(os.environ[_CONFIG_ENV])
    return create_app(config, settle_heap=True)


def _serve_workers(config_path: str | None, host: str, port: int, workers: int, access_log: bool,
                   allow_remote: bool = False) -> None:
    """``workers`` uvicorn processes on one port. Refused without a configuration whose events go
    through Redis: with the memory bus each process would have a stream of its own (a mutation on one
    worker unseen by subscribers on another, resume tokens that mean nothing elsewhere)."""
    if config_path is None:
        raise click.ClickException("--workers needs --config (the sandbox runs in one process)")
    config = _load_or_fail(config_path)
    if config.events.backend != "redis":
        raise click.ClickException('--workers needs [events] backend = "redis" (with redis_url): the workers share '
                                   "the event stream, the watchers' leases and the broker sessions through it")
    _check_bind(config, host, allow_remote)
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    sock.close()
    os.environ[_CONFIG_ENV] = str(Path(config_path).resolve())
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}/graphql"
    click.echo(f"GraphQL endpoint: {url} ({workers} workers)" + ("" if config.development else " (API key required)"))
    uvicorn.run("gateway.cli:worker_app", factory=True, host=host, port=bound, workers=workers, lifespan="on",
                ws_per_message_deflate=False, access_log=access_log, log_config=None,
                timeout_graceful_shutdown=config.transport.shutdown_timeout, ws_max_size=config.limits.max_ws_frame_bytes)


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
        adopt_uvicorn_loggers()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file: str) -> None:
    """Validate a TOML configuration: print a summary, or each offending key and exit with status 1."""
    config, problems = config_errors(file)
    if config is None:
        click.echo(f"{file}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(f"{file}: OK")
    for line in _summary(config):
        click.echo(f"  {line}")
    for warning in posture_warnings(config):
        click.echo(f"  warning: {warning}", err=True)


@main.command("persisted-manifest")
@click.argument("directory", default="queries", type=click.Path(exists=True, file_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the manifest here (default: standard output).")
def persisted_manifest(directory: str, output: str | None) -> None:
    """Build the persisted-operation manifest (SHA-256 of each document's text -> the document) from
    the .graphql files of DIRECTORY (default: queries). Each document must validate against the schema.
    Point persisted_manifest at the file; clients then send only the hash."""
    from .graphql.schema import build_schema
    from .persisted import build_manifest

    try:
        manifest = build_manifest(directory, schema=build_schema())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{len(manifest)} operations written to {output}", err=True)


@main.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (what schema/schema.graphql holds)."""
    from .graphql.schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


@main.command("hash-key")
@click.argument("key")
def hash_key(key: str) -> None:
    """Print the SHA-256 of an API key, for the sha256 of an [[api_keys]] entry."""
    click.echo(ApiKeyConfig.hash_key(key))


if __name__ == "__main__":  # pragma: no cover
    main()
