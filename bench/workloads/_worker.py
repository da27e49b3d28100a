"""A benchmark worker process: `python -m bench.workloads._worker --url grpc://... ...`.

Prints `worker ready` once connected; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from shoal.runtime import tune_gc
from shoal.sdk import Worker


async def _main(args: argparse.Namespace) -> None:
    os.environ["SHOAL_URL"] = args.url
    from bench.workloads._app import app

    worker = Worker(
        app, args.queues.split(","), args.concurrency, args.pool, prefetch=args.prefetch
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.start()
    print("worker ready", os.getpid(), flush=True)
    await stop.wait()
    await worker.stop()
    await app.close()


def main() -> None:
    """Run a worker until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--queues", default="bench")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pool", default="asyncio")
    parser.add_argument("--prefetch", type=int, default=0)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    args = parser.parse_args()
    tune_gc()  # as `shoal worker` does
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(_main(args))
    else:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
