"""Broker adapters, one package per broker with the same files (client, parsing, errors, adapter)."""

from __future__ import annotations

import importlib

from ..config import ConnectionConfig
from .base import BaseAdapter
from .runtime import Runtime

__all__ = ["ADAPTERS", "build_adapter"]

#: broker name → "module:Class"
ADAPTERS: dict[str, str] = {
    "lemon": "gateway.brokers.lemon.adapter:LemonAdapter",
    "ibkr": "gateway.brokers.ibkr.adapter:IbkrAdapter",
    "etna": "gateway.brokers.etna.adapter:EtnaAdapter",
    "aliceblue": "gateway.brokers.aliceblue.adapter:AliceBlueAdapter",
}


def build_adapter(config: ConnectionConfig, runtime: Runtime | None = None) -> BaseAdapter:
    """The adapter for ``config.broker``, not yet started."""
    module_name, cls_name = ADAPTERS[config.broker].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    adapter: BaseAdapter = cls(config, runtime)
    return adapter
