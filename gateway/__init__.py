"""broker-gateway: one GraphQL endpoint in front of several brokers' REST APIs."""

__version__ = "0.1.0"
