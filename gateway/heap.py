"""The serving process's heap after start-up, kept out of the garbage collector's way.

A started gateway holds some 150 000 long-lived objects (modules, the Strawberry and graphql-core
schema, configuration, adapters), and CPython's full (generation 2) collections scan every tracked
object: one took about 60 ms, every few queries, on this project's bench (bench/README.md,
``queries.py``). :func:`settle` collects once and then ``gc.freeze()``\\ s what survived, so that later
collections scan only what requests allocate; nothing is freed that would otherwise have been (the
collection before the freeze collects the start-up's cycles), and collection goes on as usual for
everything allocated afterwards. Called once per serving process, after the app's start-up
(``broker-gateway serve`` and each ``--workers`` process); never in a process that builds many apps
(the tests), where frozen objects would accumulate.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> int:
    """Collect, then freeze the survivors; returns how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
