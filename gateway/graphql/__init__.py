"""The Strawberry layer: one package per domain, merged in ``schema.py``."""
