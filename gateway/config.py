"""Configuration: a TOML file of connections, API keys, limits and the profile.

Example::

    profile = "production"            # the default; "development": GraphiQL, introspection, no key needed

    [connections.lemon-paper]
    broker = "lemon"
    base_url = "https://paper-trading.lemon.markets/v1/"
    credentials_env = { api_key = "LEMON_API_KEY" }   # credential name → environment variable
    timeout = 10.0                    # seconds per attempt (aiohttp total timeout)
    connect_timeout = 3.0
    read_retries = 2                  # extra attempts for reads; writes are never retried
    rate_limit = 1.6                  # requests per second on average, client side (adapter default if unset)
    rate_burst = 300                  # requests that may go at once before the average applies
    max_age = { orders = 0, positions = 0, balances = 0 }   # default maxAge (s) of reads; adapter defaults

    [[api_keys]]
    name = "advisor-frontend"
    sha256 = "<hex sha256 of the key>"
    connections = ["lemon-paper"]     # "*" for all

Secrets are held as ``SecretStr`` and never logged or printed.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .transport_config import CorsConfig, TransportConfig

__all__ = ["ApiKeyConfig", "ConnectionConfig", "EventsConfig", "GatewayConfig", "LimitsConfig", "TelemetryConfig",
           "load_config"]

BrokerName = Literal["lemon", "ibkr", "etna", "aliceblue"]


class ConnectionConfig(BaseModel):
    """One configured broker connection."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    broker: BrokerName
    base_url: str
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    credentials_env: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(10.0, gt=0)
    connect_timeout: float = Field(3.0, gt=0)
    read_retries: int = Field(2, ge=0, le=10)
    retry_max_wait: float = Field(5.0, ge=0)
    rate_limit: float | None = Field(None, gt=0)
    rate_burst: int | None = Field(None, ge=1)
    verify_tls: bool = True
    max_age: dict[Literal["orders", "positions", "balances"], float] = Field(default_factory=dict)
    breaker_threshold: int = Field(5, ge=1, le=1000)   # failures in a row that open the circuit
    breaker_reset: float = Field(30.0, gt=0)          # seconds the circuit stays open before a probe
    # cost analysis (gateway/graphql/cost.py): weight of one request, assumed accounts and allocation
    # groups; the broker's default when unset
    cost_weight: float | None = Field(None, gt=0, le=1_000)
    cost_accounts: int | None = Field(None, ge=0, le=100_000)
    cost_groups: int | None = Field(None, ge=0, le=100_000)
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("max_age")
    @classmethod
    def _ages(cls, v: dict[str, float]) -> dict[str, float]:
        for name, seconds in v.items():
            if not 0 <= seconds <= 86_400:
                raise ValueError(f"max_age.{name} must be between 0 and 86400 seconds")
        return v

    @field_validator("base_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    def credential(self, key: str) -> str | None:
        """The credential ``key``: from ``credentials``, else from the environment variable that
        ``credentials_env`` names. ``None`` when neither is set."""
        if key in self.credentials:
            return self.credentials[key].get_secret_value()
        env = self.credentials_env.get(key)
        return os.environ.get(env) if env else None


class ApiKeyConfig(BaseModel):
    """An API key (stored as its SHA-256) and the connections it may use."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sha256: str
    connections: list[str] = Field(default_factory=lambda: ["*"])

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.lower()
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("sha256 must be 64 hex digits")
        return v

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class LimitsConfig(BaseModel):
    """Query limits (security by default; docs/security.md lists each beside Apollo Router's).

    Sizes are bytes. ``max_body_bytes``: an HTTP request body, counted while it arrives (413 beyond);
    ``max_ws_frame_bytes``: one WebSocket message; ``max_variables_depth`` / ``max_list_length`` /
    ``max_string_length``: nesting, list items and characters of any one value in ``variables`` or in the
    document's literals, checked before execution; ``max_document_length``: characters of the document,
    checked before it is parsed. ``max_cost``: the estimated upstream requests of one operation,
    weighted per connection (``QUERY_TOO_COMPLEX`` beyond; gateway/graphql/cost.py).
    """

    model_config = ConfigDict(extra="forbid")

    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_page_size: int = 100
    max_subscriptions_per_connection: int = 20
    operation_timeout: float = Field(30.0, gt=0, le=600)
    max_upstream_per_operation: int = Field(16, ge=1, le=10_000)  # requests one operation may have out at once
    max_upstream_per_key: int = Field(64, ge=1, le=100_000)       # ... one API key, over all its operations
    max_body_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    max_ws_frame_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    max_variables_depth: int = Field(16, ge=2, le=1_000)
    max_list_length: int = Field(1_000, ge=1, le=1_000_000)
    max_string_length: int = Field(10_000, ge=64, le=10_000_000)
    max_document_length: int = Field(100_000, ge=1_000, le=100_000_000)   # characters of a GraphQL document
    max_cost: float = Field(1_000, gt=0)


class EventsConfig(BaseModel):
    """Order-status events: ``backend = "redis"`` (with ``redis_url``) shares them between replicas.

    Intervals are seconds: ``fast_interval`` polls accounts with working orders, ``slow_interval`` the
    others; ``retention`` is how many events a resume can replay; ``send_queue_limit`` is how many
    messages may wait for one WebSocket before it is closed as a slow consumer (code 4008).
    """

    model_config = ConfigDict(extra="forbid")

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    stream_key: str = "gateway:order-events"
    retention: int = Field(10_000, ge=10)
    fast_interval: float = Field(1.0, gt=0)
    slow_interval: float = Field(5.0, gt=0)
    resync_interval: float = Field(30.0, gt=0)
    silence_timeout: float = Field(60.0, gt=0)
    lease_ttl: float = Field(10.0, gt=0)
    linger: float = Field(2.0, ge=0)
    keep_alive_interval: float = Field(15.0, gt=0)
    send_queue_limit: int = Field(1000, ge=1)  # messages waiting for one WebSocket; beyond, it is closed (4008)

    @model_validator(mode="after")
    def _redis(self) -> EventsConfig:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("events.backend = 'redis' needs events.redis_url")
        return self


class TelemetryConfig(BaseModel):
    """OpenTelemetry traces, off unless an OTLP endpoint is set here or in ``OTEL_EXPORTER_OTLP_ENDPOINT``
    / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``. ``otlp_endpoint`` is the collector's OTLP/HTTP base URL
    (``http://collector:4318``; traces go to ``/v1/traces``)."""

    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = None
    service_name: str = "broker-gateway"


class GatewayConfig(BaseModel):
    """The whole configuration.

    ``profile``: ``"production"`` unless the file says ``profile = "development"`` (fail closed: a
    file that forgets the profile requires API keys and hides introspection and GraphiQL). Running
    ``serve`` without a file is the sandbox demo, which is development. ``allow_remote_bind``: the
    development profile serves only on loopback unless this (or ``serve --allow-remote``) is set.
    ``graphiql``: serve the explorer page at ``/graphql`` (default: on in development, off in production).
    ``persisted_operations``: ``"off"`` (documents only; a hash is refused), ``"allow"`` (documents, the
    manifest's hashes and Automatic Persisted Queries), ``"require"`` (only the manifest's operations:
    the allow-list of known frontends). ``persisted_manifest``: the JSON manifest (sha256 → document)
    that ``broker-gateway persisted-manifest`` builds; ``persisted_cache_size``: how many APQ documents
    are kept (least recently used go first).
    """

    model_config = ConfigDict(extra="forbid")

    profile: Literal["development", "production"] = "production"   # fail closed: a file must ask for development
    allow_remote_bind: bool = False   # development: serve on a non-loopback address anyway
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    allow_legacy_ws_protocol: bool = False
    graphiql: bool | None = None
    persisted_operations: Literal["off", "allow", "require"] = "allow"
    persisted_manifest: Path | None = None
    persisted_cache_size: int = Field(1000, ge=0)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    cors: CorsConfig = Field(default_factory=CorsConfig)

    @model_validator(mode="after")
    def _persisted(self) -> GatewayConfig:
        if self.persisted_operations == "require" and self.persisted_manifest is None:
            raise ValueError("persisted_operations = 'require' needs persisted_manifest")
        return self

    @model_validator(mode="after")
    def _names(self) -> GatewayConfig:
        for name, conn in self.connections.items():
            conn.name = name
        names = {key.name for key in self.api_keys}
        if unknown_ops := [n for n in self.transport.ops_keys if n not in names]:
            raise ValueError(f"transport.ops_keys names unknown api keys {unknown_ops}")
        for key in self.api_keys:
            unknown = [c for c in key.connections if c != "*" and c not in self.connections]
            if unknown:
                raise ValueError(f"api key {key.name!r} names unknown connections {unknown}")
        return self

    @property
    def development(self) -> bool:
        return self.profile == "development"

    @property
    def graphiql_enabled(self) -> bool:
        """The explorer page: ``graphiql`` when set, else on in development only."""
        return self.development if self.graphiql is None else self.graphiql


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a TOML configuration file; raises ``pydantic.ValidationError`` or
    ``tomllib.TOMLDecodeError`` with the offending key. A relative ``persisted_manifest`` is taken
    relative to the file's directory."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    config = GatewayConfig.model_validate(data)
    if config.persisted_manifest is not None and not config.persisted_manifest.is_absolute():
        config.persisted_manifest = Path(path).resolve().parent / config.persisted_manifest  # beside the file
    return config
