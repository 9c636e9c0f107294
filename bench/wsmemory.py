"""Where a WebSocket subscriber's memory goes: a served gateway with N subscribers against none.

Runs the lemon paper venue and the gateway (``create_app`` on uvicorn, on the loop ``serve`` runs
on, uvloop's; ``--asyncio-loop``: asyncio's) in this process, warms them with 10 subscribers
(one-time costs: the group, caches), then opens N graphql-transport-ws subscriptions from
``bench/subclients.py``'s client processes and prints the process's RSS growth per subscriber and
the asyncio tasks per kind. With ``--tracemalloc`` it also takes a tracemalloc snapshot before and
after, and prints the growth per subscriber grouped by the innermost frame outside the standard
library (with the standard library's allocating line) and by file (tracemalloc's own overhead makes
that run's RSS figure meaningless).

    .venv/bin/python bench/wsmemory.py --subscribers 1000
    .venv/bin/python bench/wsmemory.py --subscribers 1000 --tracemalloc

Not a test: it prints figures; bench/README.md (``subscribers.py``) records them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import linecache
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)
sys.path.insert(0, str(Path(__file__).resolve().parent))

STDLIB = str(Path(json.__file__).resolve().parent.parent)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _short(path: str) -> str:
    for prefix in ("site-packages/", ROOT + "/"):
        if prefix in path:
            return path.split(prefix, 1)[1]
    return path.replace(STDLIB + "/", "std:")


def _owner(traceback: tracemalloc.Traceback) -> tuple[tracemalloc.Frame, tracemalloc.Frame]:
    """The innermost frame outside the standard library and this script, and the allocating frame."""
    frames = list(traceback)  # oldest first
    for frame in reversed(frames):
        if not frame.filename.startswith(STDLIB) and not frame.filename.endswith("wsmemory.py") \
                and not frame.filename.startswith("<"):
            return frame, frames[-1]
    return frames[-1], frames[-1]


def _report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int, top: int) -> None:
    by_line: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    for stat in after.compare_to(before, "traceback"):
        owner, inner = _owner(stat.traceback)
        where = f"{_short(owner.filename)}:{owner.lineno}  {linecache.getline(owner.filename, owner.lineno).strip()[:70]}"
        if inner != owner:
            where += f"   [{_short(inner.filename)}:{inner.lineno}]"
        by_line[where] += stat.size_diff
        by_file[_short(owner.filename)] += stat.size_diff
    print(f"tracemalloc growth {sum(by_file.values()) / 1024 / n:.2f} KiB per subscriber")
    print("-- by file (innermost frame outside the standard library), KiB per subscriber")
    for key, size in by_file.most_common(top):
        print(f"{size / 1024 / n:7.2f}  {key}")
    print("-- by line, KiB per subscriber")
    for key, size in by_line.most_common(top):
        print(f"{size / 1024 / n:7.2f}  {key}")


async def main(args: argparse.Namespace) -> None:
    import uvicorn
    from subclients import ClientPool
    from subscribers import lemon_venue, subscribers_config

    from gateway.app import create_app
    from gateway.config import load_config
    from tests.harness import GraphQLClient, document, free_port

    venue = lemon_venue()
    urls = await venue.start()
    config_path = subscribers_config(urls["lemon"])
    app = create_app(load_config(config_path))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           ws_per_message_deflate=False, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{port}/graphql"
    account = (await GraphQLClient(url).data("Dashboard", {"positionsFirst": 1, "ordersFirst": 1}))[
        "connections"][0]["accounts"][0]["id"]
    subscribe = json.dumps({"id": "1", "type": "subscribe", "payload": {
        "query": document("OrderStatusChanged"), "variables": {"accountId": account},
        "operationName": "OrderStatusChanged"}})
    ws_url = url.replace("http://", "ws://")
    warm = ClientPool(ws_url, "graphql", 10, 1, subscribe)
    await warm.start()
    await asyncio.sleep(1.5)
    pool: Any = None
    try:
        if args.tracemalloc:
            tracemalloc.start(args.frames)
        gc.collect()
        rss_before, snap_before = _rss_kib(), tracemalloc.take_snapshot() if args.tracemalloc else None
        pool = ClientPool(ws_url, "graphql", args.subscribers, args.client_processes, subscribe)
        await pool.start()
        await asyncio.sleep(2.5)
        gc.collect()
        rss_after, snap_after = _rss_kib(), tracemalloc.take_snapshot() if args.tracemalloc else None
        n = args.subscribers
        print(f"RSS growth {(rss_after - rss_before) / n:.1f} KiB per subscriber ({n} subscribers)")
        kinds = collections.Counter(getattr(t.get_coro(), "__qualname__", "?") for t in asyncio.all_tasks())
        print("asyncio tasks: " + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common(6)))
        if snap_before is not None and snap_after is not None:
            _report(snap_before, snap_after, n, args.top)
    finally:
        if pool is not None:
            await pool.close()
        await warm.close()
        server.should_exit = True
        await serving
        await venue.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--tracemalloc", action="store_true", help="also group the growth by allocating code")
    parser.add_argument("--frames", type=int, default=14, help="traceback depth tracemalloc keeps")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--asyncio-loop", action="store_true", help="asyncio's loop instead of uvloop's")
    arguments = parser.parse_args()
    from gateway.cli import _event_loop

    with asyncio.Runner(loop_factory=asyncio.new_event_loop if arguments.asyncio_loop else _event_loop) as runner:
        runner.run(main(arguments))
