"""Serving a web app from a foreground command (``bingobox gateway``, ``bingobox fleet``): uvicorn until it stops,
the address and "ready" printed once it listens (what supervisors and tests wait for), and periodic jobs beside it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import uvicorn

log = logging.getLogger(__name__)


def serve(server: uvicorn.Server, announce: Callable[[int], str],
          jobs: tuple[tuple[str, float, Callable[[], object]], ...] = ()) -> None:
    """Run ``server``; once it listens print ``announce(port)`` and "ready"; meanwhile each (name, period, job) runs
    in a thread at start and then every period — a failure is logged and tried again next time, never fatal."""

    async def announced() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        print(announce(server.servers[0].sockets[0].getsockname()[1]), flush=True)
        print("ready", flush=True)

    async def every(name: str, period: float, job: Callable[[], object]) -> None:
        while True:
            try:
                await asyncio.to_thread(job)
            except Exception as e:  # (a busy or full disk: next time)
                log.error("%s failed: %s", name, e)
            await asyncio.sleep(period)

    async def main() -> None:
        tasks = [asyncio.create_task(announced()), *[asyncio.create_task(every(*j)) for j in jobs]]
        try:
            await server.serve()
        finally:
            for task in tasks:
                task.cancel()

    asyncio.run(main())
