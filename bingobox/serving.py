"""Serving a web app from a foreground command (``bingobox gateway``, ``bingobox fleet``): uvicorn until it stops,
the address and "ready" printed once it listens (what supervisors and tests wait for), and periodic jobs beside it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import uvicorn

from .sdnotify import Notifier

log = logging.getLogger(__name__)


def serve(server: uvicorn.Server, announce: Callable[[int], str],
          jobs: tuple[tuple[str, float, Callable[[], object]], ...] = (),
          healthy: Callable[[], str | None] | None = None, notifier: Notifier | None = None) -> None:
    """Run ``server``; once it listens print ``announce(port)`` and "ready"; meanwhile each (name, period, job) runs
    in a thread at start and then every period — a failure is logged and tried again next time, never fatal.

    Under systemd (``Type=notify``): READY=1 once it listens, STOPPING=1 on the way out, and with ``WatchdogSec`` a
    WATCHDOG=1 ping from the event loop only while ``healthy()`` says nothing is wrong (it returns what is, or
    None): a hung event loop or a part that ``healthy`` watches stops the pings, and systemd restarts the process."""
    notifier = notifier or Notifier()

    async def announced() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        line = announce(server.servers[0].sockets[0].getsockname()[1])
        print(line, flush=True)
        print("ready", flush=True)
        notifier.ready(line)

    async def watchdog(period: float) -> None:
        said = ""
        while not server.started:  # (READY first)
            await asyncio.sleep(0.01)
        while True:
            wrong = await asyncio.to_thread(healthy) if healthy else None
            if wrong is None:
                notifier.notify("WATCHDOG=1")
            elif wrong != said:
                log.error("not pinging the watchdog: %s", wrong)
            said = wrong or ""
            await asyncio.sleep(period)

    async def every(name: str, period: float, job: Callable[[], object]) -> None:
        while True:
            try:
                await asyncio.to_thread(job)
            except Exception as e:  # (a busy or full disk: next time)
                log.error("%s failed: %s", name, e)
            await asyncio.sleep(period)

    async def main() -> None:
        tasks = [asyncio.create_task(announced()), *[asyncio.create_task(every(*j)) for j in jobs]]
        if notifier.watchdog_s is not None:
            tasks.append(asyncio.create_task(watchdog(notifier.watchdog_s)))
        try:
            await server.serve()
        finally:
            notifier.stopping()
            for task in tasks:
                task.cancel()

    asyncio.run(main())
