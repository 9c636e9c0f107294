"""The ``[transport]`` and ``[cors]`` sections of the configuration (see ``docs/security.md``).

Example::

    [transport]
    csrf_prevention = true                      # refuse simple (non-preflighted) requests without a CSRF header
    csrf_required_headers = ["x-graphql-csrf", "apollo-require-preflight", "x-apollo-operation-name"]
    max_unauthenticated_sockets_per_client = 20 # WebSockets without connection_init, per client address
    connection_init_timeout = 10.0              # seconds a WebSocket may take to send connection_init
    shutdown_timeout = 10.0                     # seconds SIGTERM waits for open requests and streams
    ops_keys = ["prometheus"]                   # API key names that may read /metrics and detailed health

    [cors]                                      # off unless allow_origins is set
    allow_origins = ["https://advisor.example.com"]
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CorsConfig", "TransportConfig"]

#: the headers that mark a request as sent by a script (a browser preflights them): ours and Apollo's
DEFAULT_CSRF_HEADERS = ["x-graphql-csrf", "apollo-require-preflight", "x-apollo-operation-name"]


class TransportConfig(BaseModel):
    """HTTP and WebSocket transport rules: CSRF prevention, unauthenticated sockets, shutdown, ops access.

    ``ops_keys``: names of ``[[api_keys]]`` that may read ``/metrics`` and the detailed ``/healthz`` /
    ``/readyz`` (connection names) in production; without a key these answer without names (``/metrics``:
    401). In development they are open.
    """

    model_config = ConfigDict(extra="forbid")

    csrf_prevention: bool = True
    csrf_required_headers: list[str] = Field(default_factory=lambda: list(DEFAULT_CSRF_HEADERS))
    max_unauthenticated_sockets_per_client: int = Field(20, ge=1, le=100_000)
    connection_init_timeout: float = Field(10.0, gt=0, le=300)
    shutdown_timeout: float = Field(10.0, ge=0, le=600)
    ops_keys: list[str] = Field(default_factory=list)

    @field_validator("csrf_required_headers")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if not v or any(not h.strip() or not h.isascii() for h in v):
            raise ValueError("csrf_required_headers must name at least one header (ASCII)")
        return [h.strip().lower() for h in v]


class CorsConfig(BaseModel):
    """CORS (Starlette's ``CORSMiddleware``); off unless ``allow_origins`` lists origins."""

    model_config = ConfigDict(extra="forbid")

    allow_origins: list[str] = Field(default_factory=list)
    allow_headers: list[str] = Field(default_factory=lambda: ["authorization", "content-type", *DEFAULT_CSRF_HEADERS])
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0, le=86_400)
