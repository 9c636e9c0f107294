"""A running paper venue and the runner that serves venues on loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .control import ControlPlane
from .engine import Engine, EngineConfig

__all__ = ["VENUES", "available_venues", "SandboxRunner", "Venue", "create_venue"]

log = logging.getLogger(__name__)

#: venue name → module with ``create_venue(config: EngineConfig | None) -> Venue``
VENUES: dict[str, str] = {
    "lemon": "gateway.sandbox.lemon",
    "ibkr": "gateway.sandbox.ibkr",
    "etna": "gateway.sandbox.etna",
    "aliceblue": "gateway.sandbox.aliceblue",
}


def available_venues() -> list[str]:
    """The venues whose package is present (a venue under construction is skipped)."""
    return [name for name, module in VENUES.items() if importlib.util.find_spec(module) is not None]


@dataclass(slots=True)
class Venue:
    """One paper broker speaking one wire format.

    Attributes:
        name: the broker name (``lemon``, ``ibkr``, ``etna``, ``aliceblue``).
        app: the ASGI app (wire API + ``/__sandbox__`` control plane).
        engine: the paper engine behind it.
        control: its control plane.
        base_path: where the wire API lives, with a trailing slash (``/v1/`` for lemon).
        credentials: what a gateway connection needs to talk to it (``api_key``, ...).
        options: connection options a gateway connection to this venue needs (``verify_tls``, ...).
        background: extra coroutine factories to run beside the engine (session reapers, ...).
        ssl_certfile / ssl_keyfile: serve over HTTPS with this certificate (self-signed is fine).
    """

    name: str
    app: ASGIApp
    engine: Engine
    control: ControlPlane
    base_path: str
    credentials: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    background: list[Any] = field(default_factory=list)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


def create_venue(name: str, config: EngineConfig | None = None, **options: Any) -> Venue:
    """Build the venue ``name`` (a key of :data:`VENUES`); ``options`` are the venue's own keyword
    arguments (IBKR ``tls``, ETNA ``token_lifetime``, ...)."""
    module = importlib.import_module(VENUES[name])
    venue: Venue = module.create_venue(config, **options)
    return venue


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass(slots=True)
class _Running:
    venue: Venue
    server: _EmbeddedServer
    tasks: list[asyncio.Task[Any]]
    base_url: str


class SandboxRunner:
    """Serve venues over HTTP on loopback, each on its own port, inside the current event loop.

    ``await runner.start()`` returns ``{name: base_url}`` (the base URL includes the venue's
    ``base_path``); ``await runner.stop()`` shuts them down. ``venue_options`` maps a venue name to
    the keyword arguments of its ``create_venue``.
    """

    def __init__(self, names: list[str] | None = None, *, host: str = "127.0.0.1",
                 ports: dict[str, int] | None = None, config: EngineConfig | None = None,
                 venue_options: dict[str, dict[str, Any]] | None = None) -> None:
        self.names = names or available_venues()
        self.host = host
        self.ports = ports or {}
        self.config = config
        self.venue_options = venue_options or {}
        self.running: dict[str, _Running] = {}

    async def start(self) -> dict[str, str]:
        for name in self.names:
            venue = create_venue(name, self.config, **self.venue_options.get(name, {}))
            cfg = uvicorn.Config(venue.app, host=self.host, port=self.ports.get(name, 0), log_level="warning",
                                 lifespan="off", access_log=False,
                                 ssl_certfile=venue.ssl_certfile, ssl_keyfile=venue.ssl_keyfile)
            server = _EmbeddedServer(cfg)
            tasks = [asyncio.create_task(server.serve(), name=f"sandbox-{name}")]
            while not server.started:
                if tasks[0].done():
                    tasks[0].result()
                    raise RuntimeError(f"sandbox venue {name} did not start")
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            tasks.append(asyncio.create_task(venue.engine.run(), name=f"sandbox-{name}-engine"))
            tasks.extend(asyncio.create_task(factory()) for factory in venue.background)
            scheme = "https" if venue.ssl_certfile else "http"
            base_url = f"{scheme}://{self.host}:{port}{venue.base_path}"
            self.running[name] = _Running(venue, server, tasks, base_url)
        return self.base_urls

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: r.base_url for name, r in self.running.items()}

    def venue(self, name: str) -> Venue:
        return self.running[name].venue

    async def stop(self) -> None:
        for running in self.running.values():
            running.server.should_exit = True
        for running in self.running.values():
            for task in running.tasks[1:]:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*running.tasks, return_exceptions=True)
        self.running.clear()
