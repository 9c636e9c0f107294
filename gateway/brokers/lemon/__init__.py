"""lemon.markets Trading API v1 adapter (shared/brokers/lemon.md)."""
